"""The server's internal request and response: wire-free, framework-free.

Every wire protocol (OIP V2, MLflow, KServe V1, ``/predict``) translates its bytes into
one ``InferenceRequest`` and renders one ``InferenceResponse``; routing, batching and
model execution never know which protocol a request came in on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)  # two or more per request: a frozen init costs ~4x a plain one
class Tensor:
    """A named n-dimensional input or output. ``data`` is a numpy array of ``shape``.

    Strings (OIP ``BYTES``) are object arrays of ``str`` or ``bytes``. Treat it as
    immutable: the batcher and the prediction log keep references to it.
    """

    name: str
    data: np.ndarray[Any, Any]
    datatype: str | None = None  # the OIP datatype the client declared or will receive

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return tuple(int(d) for d in self.data.shape)


@dataclass
class InferenceRequest:
    """What a client asked: inputs for one model (and optionally one version).

    ``inputs`` is either one tensor whose first dimension is the batch (rows), or one
    tensor per column (each of shape ``[rows]`` or ``[rows, 1]``) named after the
    model's signature columns, as MLflow's ``dataframe_split`` or OIP clients send.
    """

    model: str
    inputs: list[Tensor]
    version: int | None = None
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] | None = None  # OIP: names of outputs requested
    binary_outputs: bool = False  # OIP binary extension: answer with raw tensor bytes
    # The raw (name, value) header pairs, lower-case names, as the transport got them:
    # the router reads a sticky header from them. A reference, never a copy.
    headers: Sequence[tuple[bytes, bytes]] = ()

    @property
    def rows(self) -> int:
        """Number of rows (the first dimension shared by every input)."""
        return int(self.inputs[0].data.shape[0]) if self.inputs and self.inputs[0].data.ndim else 1


@dataclass
class InferenceResponse:
    """What the model answered: one tensor per output, with the version that answered."""

    model: str
    version: int
    outputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
