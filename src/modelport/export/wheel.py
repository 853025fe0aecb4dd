"""modelport's own wheel, packed from the running package, for a build context.

modelport is not installed from a package index in the image: an index could serve a
different project under the same name. The context carries the code that built it,
as a pure-Python wheel made from the package folder and the installed distribution's
metadata. Entries are sorted and dated 1980-01-01, so the same code gives the same
wheel, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import modelport
from modelport.errors import ConfigurationError
from modelport.export import selfdist

_EPOCH = (1980, 1, 1, 0, 0, 0)
_WHEEL = ("Wheel-Version: 1.0\nGenerator: modelport-build\nRoot-Is-Purelib: true\n"
          "Tag: py3-none-any\n")


def wheel_name() -> str:
    """The wheel's file name, ``modelport-<version>-py3-none-any.whl``."""
    return f"modelport-{modelport.__version__}-py3-none-any.whl"


def pack(dest_dir: Path) -> Path:
    """Write modelport's wheel into ``dest_dir``; return its path."""
    files = _package_files()
    info = f"modelport-{modelport.__version__}.dist-info"
    extra = {
        f"{info}/METADATA": selfdist.metadata_text().encode(),
        f"{info}/WHEEL": _WHEEL.encode(),
        f"{info}/entry_points.txt": selfdist.entry_points().encode(),
        f"{info}/top_level.txt": b"modelport\n",
    }
    path = dest_dir / wheel_name()
    record: list[str] = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in [*sorted(files.items()), *extra.items()]:
            _add(zf, arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{arcname},sha256={digest.decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        _add(zf, f"{info}/RECORD", ("\n".join(record) + "\n").encode())
    return path


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    entry = zipfile.ZipInfo(arcname, date_time=_EPOCH)
    entry.external_attr = 0o644 << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(entry, data)


def _package_files() -> dict[str, bytes]:
    root = Path(modelport.__file__).resolve().parent
    out: dict[str, bytes] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if (not path.is_file() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo")
                or any(part.startswith(".") for part in rel.parts)):
            continue
        out[f"modelport/{rel.as_posix()}"] = path.read_bytes()
    if "modelport/__init__.py" not in out:
        raise ConfigurationError(f"{root} does not look like the modelport package")
    return out
