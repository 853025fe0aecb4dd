"""Custom Python models: subclass ``modelport.PythonModel`` and implement ``predict``.

Such a model is code plus data. The instance is serialised with cloudpickle, with its
defining module embedded by value (so the bundle is self-contained), the class source
kept beside it for review, and the user's artifact files stored as bundle files.
Loading runs that code, so it needs ``trusted=True`` every time.
"""

from __future__ import annotations

import contextlib
import inspect
import shutil
import sys
import sysconfig
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.artifacts.bundle import Bundle, check_file_name
from modelport.errors import InvalidInputError, UntrustedModelError
from modelport.flavors.base import Flavor, Predictor, SavedModel, TrustPolicy

PICKLE_FILE = "python_model.cloudpickle"
SOURCE_FILE = "code/source.py"
ARTIFACT_PREFIX = "artifacts/"


@dataclass(frozen=True)
class ModelContext:
    """What ``PythonModel.load_context`` receives: local paths of the logged artifacts."""

    artifacts: dict[str, str] = field(default_factory=dict)


class PythonModel:
    """Base class for custom models, as ``mlflow.pyfunc.PythonModel`` is for MLflow users.

    Implement ``predict(self, X)``; optionally ``load_context(self, context)`` to read
    files passed as ``log_model(..., artifacts={"name": "path"})``.
    """

    def load_context(self, context: ModelContext) -> None:
        """Prepare the model after loading (read artifacts, build caches)."""

    def predict(self, X: Any) -> Any:
        """Predictions for ``X``: one per row."""
        raise NotImplementedError("PythonModel subclasses must implement predict(self, X)")


class PythonModelPredictor:
    """A loaded PythonModel; owns the temporary folder holding its artifacts."""

    def __init__(self, model: PythonModel, workdir: Path | None) -> None:
        self.model = model
        if workdir is not None:
            weakref.finalize(self, shutil.rmtree, workdir, ignore_errors=True)

    def predict(self, data: Any) -> Any:
        """``model.predict(data)``."""
        return self.model.predict(data)


def _installed(module: Any) -> bool:
    """Whether a module comes from site-packages (pickled by reference, not by value)."""
    path = getattr(module, "__file__", None)
    if not path:
        return False
    roots = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    return any(str(Path(path).resolve()).startswith(str(Path(r).resolve())) for r in roots)


class PythonModelFlavor(Flavor):
    """``modelport.PythonModel`` subclasses, stored as code plus data."""

    name = "python"
    libraries = ("cloudpickle", "numpy")
    runs_code = True

    def handles(self, model: Any) -> bool:
        """Instances of ``PythonModel`` subclasses."""
        return isinstance(model, PythonModel)

    def save(self, model: Any, artifacts: dict[str, str] | None = None) -> SavedModel:
        """Pickle the instance with its module by value; add source and artifacts."""
        import cloudpickle

        module = sys.modules.get(type(model).__module__)
        by_value = module is not None and module.__name__ != "__main__" and not _installed(module)
        if by_value:
            cloudpickle.register_pickle_by_value(module)
        try:
            files = {PICKLE_FILE: cloudpickle.dumps(model)}
        finally:
            if by_value:
                cloudpickle.unregister_pickle_by_value(module)
        # Defined interactively there is no source to keep; the pickle still has the code.
        with contextlib.suppress(OSError, TypeError):
            files[SOURCE_FILE] = inspect.getsource(type(model)).encode()
        names: dict[str, str] = {}
        for key, path in (artifacts or {}).items():
            check_file_name(key)
            src = Path(path)
            if not src.is_file():
                raise InvalidInputError(f"artifact {key!r}: {path} is not a file")
            stored = f"{ARTIFACT_PREFIX}{key}/{check_file_name(src.name)}"
            files[stored] = src.read_bytes()
            names[key] = stored
        return SavedModel(files, {"class": f"{type(model).__module__}.{type(model).__qualname__}",
                                  "artifacts": names})

    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """Unpickle (only when trusted), extract artifacts, call ``load_context``."""
        if not policy.trusted:
            raise UntrustedModelError(
                f"{bundle.meta.get('class', 'this model')} is a custom Python model: loading it "
                "runs its code. Pass trusted=True (CLI: --trusted) if you trust its author"
            )
        import cloudpickle

        model = cloudpickle.loads(bundle.read(PICKLE_FILE))
        artifacts: dict[str, str] = bundle.meta.get("artifacts") or {}
        workdir = None
        paths: dict[str, str] = {}
        if artifacts:
            workdir = Path(tempfile.mkdtemp(prefix="modelport-artifacts-"))
            for key, stored in artifacts.items():
                target = workdir / check_file_name(stored)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(bundle.read(stored))
                paths[key] = str(target)
        model.load_context(ModelContext(artifacts=paths))
        return PythonModelPredictor(model, workdir)
