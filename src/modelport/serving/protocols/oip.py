"""Open Inference Protocol (KServe V2) REST, with Triton's binary tensor data extension.

Only translation lives here: request bytes → ``InferenceRequest``, ``InferenceResponse``
→ bytes. A malformed request raises ``InvalidInputError`` (400) or
``PayloadTooLargeError`` (413) naming the field at fault; nothing else escapes
``parse_infer``.

Binary extension: the body is a JSON header of ``Inference-Header-Content-Length``
bytes, then each binary input's raw little-endian bytes in input order; a ``BYTES``
element is a 4-byte little-endian length followed by its bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson

from modelport.errors import InvalidInputError, PayloadTooLargeError
from modelport.serving.datatypes import NUMPY_TO_OIP, numpy_dtype, oip_datatype
from modelport.serving.protocols import fast
from modelport.serving.protocols.jsonbody import load_json
from modelport.serving.protocols.jsonbody import shown as _show
from modelport.serving.types import InferenceRequest, InferenceResponse, Tensor
from modelport.uri import validate_name

HEADER_LENGTH = "Inference-Header-Content-Length"
_MAX_DIMS = 32  # numpy's historical limit; no real model needs more
_MAX_DIM = 2**63 - 1  # the spec allows uint64 dims, but numpy indexes with int64
_LEN = struct.Struct("<I")
_TYPE_NAMES: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}
_UNSUPPORTED = {"shared_memory_region": "shared-memory", "classification": "classification"}
_NATIVE_TO_OIP: dict[np.dtype[Any], str] = {
    np.dtype(name): oip for name, oip in NUMPY_TO_OIP.items()}  # native byte order only
_ALLOWED: dict[str, tuple[set[type], str]] = {
    "b": ({bool}, "booleans"), "O": ({str}, "strings"), "f": ({int, float}, "numbers")}


def _get(obj: dict[str, Any], key: str, kind: type, where: str, required: bool = False) -> Any:
    """``obj[key]`` if it is a ``kind`` (str, list or dict); None if absent and optional."""
    if key not in obj:
        if required:
            raise InvalidInputError(f"{where}: missing required field {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, kind):
        raise InvalidInputError(
            f"{where}: {key!r} must be {_TYPE_NAMES[kind]}, got {type(value).__name__}")
    if isinstance(value, str):
        try:  # lone surrogates survive json.loads but could never be echoed back as UTF-8
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"{where}: {key!r} is not valid Unicode") from None
    return value


def _params(obj: dict[str, Any], where: str) -> dict[str, Any]:
    params: dict[str, Any] = _get(obj, "parameters", dict, where) or {}
    for key, ext in _UNSUPPORTED.items():  # ignoring these would silently change results
        if key in params:
            raise InvalidInputError(
                f"{where}: parameter {key!r} given but the {ext} extension is not supported")
    return params


def parse_infer(body: bytes, *, model: str, version: int | None, header_length: int | None,
                max_elements: int = 50_000_000) -> InferenceRequest:
    """Parse an OIP ``/infer`` body: JSON, or a JSON header followed by binary tensors.

    ``header_length`` is the ``Inference-Header-Content-Length`` header as an int (None:
    the whole body is JSON). ``max_elements`` caps the elements of all inputs together
    (413 beyond it) and is checked before any tensor data is converted.
    """
    validate_name(model)
    if version is not None and (type(version) is not int or version < 1):
        raise InvalidInputError(f"invalid model version {_show(version)}: expected a number >= 1")
    return parse_infer_body(body, model=model, version=version, header_length=header_length,
                            max_elements=max_elements)


def parse_infer_body(body: bytes, *, model: str, version: int | None,
                     header_length: int | None, max_elements: int = 50_000_000
                     ) -> InferenceRequest:
    """``parse_infer`` for a caller that has validated ``model`` and ``version`` already
    (the server does it once per path, not per request)."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise InvalidInputError("the request body must be bytes")
    if header_length is None and type(body) is bytes:
        quick = fast.oip_infer(body, model, version, max_elements)
        if quick is not None:
            return quick
    return _parse_infer(body, model, version, header_length, max_elements)


def _parse_infer(body: bytes, model: str, version: int | None, header_length: int | None,
                 max_elements: int) -> InferenceRequest:
    """``parse_infer`` for every body (``fast.oip_infer`` answers only the commonest)."""
    view = memoryview(body)  # slicing a view copies nothing; tensors copy once, below
    if header_length is None:
        header, binary = body if type(body) is bytes else view, view[len(view):]
    elif type(header_length) is not int or not 0 < header_length <= len(view):
        raise InvalidInputError(f"invalid {HEADER_LENGTH} {_show(header_length)}: expected a "
                                f"number from 1 to the body length ({len(view)})")
    else:
        header, binary = view[:header_length], view[header_length:]

    doc = load_json(bytes(header))
    if not isinstance(doc, dict):
        raise InvalidInputError(f"the request must be a JSON object, got {type(doc).__name__}")
    req_id = _get(doc, "id", str, "request")
    params = _params(doc, "request")
    raw_inputs = _get(doc, "inputs", list, "request", required=True)
    if not raw_inputs:
        raise InvalidInputError("request: 'inputs' is empty; at least one input is required")

    tensors: list[Tensor] = []
    offset = 0
    for name, datatype, dtype, shape, count, item in _input_specs(
            raw_inputs, max_elements, header_length is not None):
        where = f"input {_show(name)}"
        size = item["binary_data_size"]
        if size is not None:
            if size > len(binary) - offset:
                raise InvalidInputError(
                    f"{where}: binary_data_size {size} overruns the body: only "
                    f"{len(binary) - offset} bytes remain after the JSON header and earlier inputs")
            flat = _from_binary(binary[offset : offset + size], dtype, datatype, count, where)
            offset += size
        else:
            flat = _from_json(item["data"], dtype, datatype, shape, count, where)
        try:
            data = flat.reshape(shape)
        except (ValueError, OverflowError) as exc:  # e.g. [0, 2**62, 2**62]: size overflows
            msg = f"{where}: shape {list(shape)} is not allocatable: {exc}"
            raise InvalidInputError(msg) from None
        tensors.append(Tensor(name=name, data=data, datatype=datatype))
    if offset != len(binary):
        raise InvalidInputError(f"{len(binary) - offset} trailing bytes after the JSON header and "
                                f"binary inputs (binary_data_size values add up to {offset})")

    outputs, binary_outputs = _parse_outputs(doc, params)
    return InferenceRequest(model=model, inputs=tensors, version=version, id=req_id,
                            parameters=params, outputs=outputs, binary_outputs=binary_outputs)


def _input_specs(raw_inputs: list[Any], max_elements: int, has_binary: bool) -> list[Any]:
    """Every input's validated metadata, in order, before any tensor data is touched.

    Checking all shapes and sizes first makes a huge shape claim fail in microseconds.
    """
    specs: list[Any] = []
    seen: set[str] = set()
    total = 0
    for i, item in enumerate(raw_inputs):
        if not isinstance(item, dict):
            raise InvalidInputError(f"inputs[{i}] must be an object, got {type(item).__name__}")
        name = _get(item, "name", str, f"inputs[{i}]", required=True)
        if not name:
            raise InvalidInputError(f"inputs[{i}]: 'name' is empty")
        if name in seen:
            raise InvalidInputError(f"duplicate input name {_show(name)}")
        seen.add(name)
        where = f"input {_show(name)}"
        datatype = _get(item, "datatype", str, where, required=True)
        try:
            dtype = numpy_dtype(datatype)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from None
        shape = _get(item, "shape", list, where, required=True)
        if len(shape) > _MAX_DIMS:
            raise InvalidInputError(f"{where}: {len(shape)} dimensions; at most {_MAX_DIMS}")
        if not all(type(d) is int and 0 <= d <= _MAX_DIM for d in shape):
            raise InvalidInputError(f"{where}: shape {_show(shape)} must hold non-negative "
                                    "integers")
        count = math.prod(shape)
        total += count
        if total > max_elements:
            raise PayloadTooLargeError(f"{where}: shape {shape} holds {count} elements; the "
                                       f"request limit is {max_elements} elements in all")
        size = _params(item, where).get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0:
                raise InvalidInputError(f"{where}: binary_data_size must be an integer >= 0")
            if "data" in item:
                raise InvalidInputError(f"{where}: has both 'data' and binary_data_size")
            if not has_binary:
                raise InvalidInputError(f"{where}: binary_data_size given but the request has "
                                        f"no {HEADER_LENGTH} header")
        elif "data" not in item:
            raise InvalidInputError(f"{where}: missing 'data' (or binary_data_size)")
        specs.append((name, datatype, dtype, tuple(shape), count,
                      {"data": item.get("data"), "binary_data_size": size}))

    # Every input describes the same rows; a mismatch is a client bug, not a broadcast.
    if len({s[3][0] if s[3] else None for s in specs}) > 1:
        shown = ", ".join(f"{_show(s[0])} {list(s[3])}" for s in specs)
        raise InvalidInputError(f"inputs have different first (batch) dimensions: {shown}")
    return specs


def _flatten(data: Any, shape: tuple[int, ...], count: int, where: str) -> list[Any]:
    """The row-major leaves of ``data``, which is either flat or nested exactly as ``shape``."""
    if not isinstance(data, list):
        raise InvalidInputError(f"{where}: 'data' must be an array, got {type(data).__name__}")
    if not data or not isinstance(data[0], list):
        if len(data) != count:
            raise InvalidInputError(
                f"{where}: shape {list(shape)} needs {count} elements, 'data' has {len(data)}")
        return data
    # Level by level rather than recursively: one C-level extend per list, no per-leaf
    # Python work, and the path of a bad node is only computed for the error message.
    level: list[Any] = [data]
    for depth, dim in enumerate(shape):
        nxt: list[Any] = []
        for idx, node in enumerate(level):
            if type(node) is not list or len(node) != dim:
                path = "".join(f"[{k}]" for k in np.unravel_index(idx, shape[:depth]))
                got = f"{len(node)} elements" if isinstance(node, list) else "a scalar"
                raise InvalidInputError(
                    f"{where}: data{path} has {got} but shape {list(shape)} says {dim} "
                    "(nested data must match the shape; or send it flat)")
            nxt.extend(node)
        level = nxt
    if list in set(map(type, level)):
        raise InvalidInputError(f"{where}: 'data' is nested deeper than shape {list(shape)}")
    return level


def _from_json(data: Any, dtype: np.dtype[Any], datatype: str, shape: tuple[int, ...],
               count: int, where: str) -> np.ndarray[Any, Any]:
    flat = _flatten(data, shape, count, where)
    allowed, want = _ALLOWED.get(dtype.kind, ({int}, "integers"))
    if not set(map(type, flat)) <= allowed:  # type(True) is bool, so bools never pass as ints
        bad = next(v for v in flat if type(v) not in allowed)
        raise InvalidInputError(
            f"{where}: {datatype} data must be {want}, got {type(bad).__name__} {_show(bad, 30)}")
    if dtype.kind == "O":
        out = np.empty(len(flat), dtype=object)
        out[:] = flat  # keeps each str as is, where np.array would make a fixed-width dtype
        return out
    if dtype.kind in "iu" and flat:
        info = np.iinfo(dtype)
        lo, hi = min(flat), max(flat)
        if lo < info.min or hi > info.max:
            raise InvalidInputError(f"{where}: value {lo if lo < info.min else hi} is out of "
                                    f"range for {datatype} ({info.min}..{info.max})")
    try:
        if dtype == np.float64:  # Python floats are float64: nothing to overflow
            out = np.array(flat, dtype=dtype)
        else:
            with np.errstate(over="ignore"):
                out = np.array(flat, dtype=dtype)
    except OverflowError:  # an integer too large for any float
        raise InvalidInputError(f"{where}: a value is out of range for {datatype}") from None
    if dtype.kind == "f" and dtype.itemsize < 8 and flat:
        # FP16/FP32 silently turn large finite values into inf: that is data loss.
        became_inf = np.isinf(out) & np.isfinite(np.array(flat, dtype=np.float64))
        if became_inf.any():
            bad = flat[int(np.argmax(became_inf))]
            raise InvalidInputError(f"{where}: value {bad} is out of range for {datatype}")
    return out


def _from_binary(raw: memoryview, dtype: np.dtype[Any], datatype: str, count: int,
                 where: str) -> np.ndarray[Any, Any]:
    if dtype.kind == "O":
        return _decode_bytes_tensor(raw, count, where)
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(f"{where}: {count} {datatype} elements need "
                                f"{count * dtype.itemsize} bytes, binary_data_size is {len(raw)}")
    if dtype.kind == "b" and np.frombuffer(raw, dtype=np.uint8).max(initial=0) > 1:
        raise InvalidInputError(f"{where}: BOOL bytes must be 0 or 1")
    # astype copies into native byte order: the body is read-only, models may write inputs.
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)


def _decode_bytes_tensor(raw: memoryview, count: int, where: str) -> np.ndarray[Any, Any]:
    if count * 4 > len(raw):  # each element costs at least its length prefix: fail fast
        raise InvalidInputError(f"{where}: {count} BYTES elements need at least {count * 4} "
                                f"bytes, binary_data_size is {len(raw)}")
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > len(raw):
            raise InvalidInputError(f"{where}: binary data ends inside element {i}'s length")
        (n,) = _LEN.unpack_from(raw, pos)
        if pos + 4 + n > len(raw):
            raise InvalidInputError(f"{where}: element {i} claims {n} bytes but only "
                                    f"{len(raw) - pos - 4} remain")
        out[i] = bytes(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    if pos != len(raw):
        raise InvalidInputError(
            f"{where}: {len(raw) - pos} bytes left over after {count} BYTES elements")
    return out


def _parse_outputs(doc: dict[str, Any], params: dict[str, Any]) -> tuple[list[str] | None, bool]:
    """Requested output names (None: all) and whether the answer goes binary.

    Per output, ``binary_data`` overrides the request's ``binary_data_output``. The
    internal request holds one flag, so all outputs go binary if any asks to: clients
    read each output by its own ``binary_data_size`` either way.
    """
    default = params.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise InvalidInputError("request: parameter 'binary_data_output' must be a boolean")
    raw = _get(doc, "outputs", list, "request")
    if not raw:  # absent, or [] (which tritonclient never sends): every output
        return None, default
    names: list[str] = []
    binary = False
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInputError(f"outputs[{i}] must be an object, got {type(item).__name__}")
        name = _get(item, "name", str, f"outputs[{i}]", required=True)
        if name in names:
            raise InvalidInputError(f"duplicate output name {_show(name)}")
        flag = _params(item, f"output {_show(name)}").get("binary_data", default)
        if not isinstance(flag, bool):
            raise InvalidInputError(
                f"output {_show(name)}: parameter 'binary_data' must be a boolean")
        binary = binary or flag
        names.append(name)
    return names, binary


def _wire_array(arr: np.ndarray[Any, Any]) -> tuple[str, np.ndarray[Any, Any]]:
    """The OIP datatype and a C-contiguous, native-order array holding exactly that."""
    known = _NATIVE_TO_OIP.get(arr.dtype)  # a dict hit instead of str(dtype), per output
    if known is not None:
        return known, np.ascontiguousarray(arr)
    if arr.dtype.kind in "OUS":
        return "BYTES", arr
    dtype = arr.dtype.newbyteorder("=")
    if str(dtype) in NUMPY_TO_OIP:
        return oip_datatype(dtype), np.ascontiguousarray(arr, dtype=dtype)
    if dtype.kind in "biuf":  # e.g. float128: no OIP type, FP64 is the closest
        return "FP64", np.ascontiguousarray(arr, dtype=np.float64)
    return "BYTES", arr.astype(str).astype(object)  # complex, datetime64, ...


def _as_text(value: Any) -> str:  # JSON cannot carry raw bytes: decode, replacing errors
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else _as_text(value).encode("utf-8", "surrogatepass")


def _scrub(obj: Any) -> Any:
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8")
    if isinstance(obj, dict):
        return {_scrub(k): _scrub(v) for k, v in obj.items()}
    return [_scrub(v) for v in obj] if isinstance(obj, list | tuple) else obj


def _dumps(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # lone surrogates cannot be UTF-8: replace them rather than fail
        return orjson.dumps(_scrub(doc), option=orjson.OPT_SERIALIZE_NUMPY)


def render_infer(response: InferenceResponse,
                 request: InferenceRequest) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (Content-Type, plus the header length if binary).

    In JSON, NaN and infinities become ``null`` (orjson; JSON has no such numbers) and
    bytes elements are decoded as UTF-8 with replacement; binary output is exact.
    """
    outputs = response.outputs
    if request.outputs is not None:
        by_name = {t.name: t for t in response.outputs}
        unknown = [n for n in request.outputs if n not in by_name]
        if unknown:
            raise InvalidInputError(f"unknown output {_show(unknown[0])}; the model produces "
                                    + (", ".join(by_name) or "no outputs"))
        outputs = [by_name[n] for n in request.outputs]
    doc: dict[str, Any] = {"model_name": response.model, "model_version": str(response.version)}
    req_id = response.id if response.id is not None else request.id
    if req_id is not None:
        doc["id"] = req_id
    if response.parameters:
        doc["parameters"] = response.parameters
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in outputs:
        datatype, arr = _wire_array(np.asarray(tensor.data))
        entry: dict[str, Any] = {"name": tensor.name, "datatype": datatype,
                                 "shape": [int(d) for d in arr.shape]}
        if request.binary_outputs:
            if datatype == "BYTES":
                raw = b"".join(_LEN.pack(len(b)) + b for b in map(_as_bytes, arr.reshape(-1)))
            else:
                raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif datatype == "BYTES":
            entry["data"] = [_as_text(v) for v in arr.reshape(-1)]
        else:
            entry["data"] = arr.reshape(-1)  # orjson writes numpy arrays natively
        entries.append(entry)
    doc["outputs"] = entries
    header = _dumps(doc)
    if not request.binary_outputs:
        return header, {"Content-Type": "application/json"}
    return b"".join([header, *chunks]), {"Content-Type": "application/octet-stream",
                                         HEADER_LENGTH: str(len(header))}


def render_error(message: str) -> bytes:
    """``{"error": message}``, the OIP error object."""
    return _dumps({"error": message})


def server_metadata(version: str) -> dict[str, Any]:
    """The ``GET /v2`` document."""
    return {"name": "modelport", "version": version,
            "extensions": ["binary_tensor_data", "model_repository"]}


def model_metadata(name: str, versions: list[str], platform: str, inputs: list[dict[str, Any]],
                   outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``GET /v2/models/<name>[/versions/<v>]`` document."""
    return {"name": name, "versions": list(versions), "platform": platform,
            "inputs": inputs, "outputs": outputs}


def _schema_datatype(dtype: Any) -> str:
    try:  # "object", "string", "category" and other non-numpy names are strings: BYTES
        return "BYTES" if dtype in ("object", "string") else oip_datatype(np.dtype(dtype))
    except TypeError:
        return "BYTES"


def tensor_metadata_from_schema(schema: dict[str, Any] | None,
                                default_name: str) -> list[dict[str, Any]]:
    """OIP tensor metadata (``{"name", "datatype", "shape"}``) for a signature schema.

    ``tensor``: one tensor named ``default_name``, the schema's shape (-1: any batch).
    ``dataframe``: one tensor per column of shape ``[-1, 1]``, Triton's convention for a
    batched scalar feature (``[rows]`` per column is accepted too, see InferenceRequest).
    ``{name: schema}`` (named outputs): each one's entries. None or unknown: ``[]``.
    """
    if not isinstance(schema, dict):
        return []
    kind = schema.get("type")
    if kind == "tensor":
        return [{"name": default_name, "datatype": _schema_datatype(schema.get("dtype")),
                 "shape": [int(d) for d in schema.get("shape") or [-1]]}]
    if kind == "dataframe":
        return [{"name": str(c["name"]), "datatype": _schema_datatype(c.get("dtype")),
                 "shape": [-1, 1]} for c in schema.get("columns", [])]
    if kind is None and schema and all(isinstance(v, dict) for v in schema.values()):
        return [m for key, sub in schema.items()
                for m in tensor_metadata_from_schema(sub, str(key))]
    return []
