"""The locked requirements: recorded flavor versions first, installed versions for the rest."""

from __future__ import annotations

from importlib import metadata

import pytest

from modelport.errors import ConflictError, InvalidInputError
from modelport.export.lock import lock


def test_core_and_flavor_pinned_nothing_else() -> None:
    numpy = metadata.version("numpy")
    locked = lock({"scikit-learn": metadata.version("scikit-learn"), "numpy": numpy})
    names = {key: pin.version for key, pin in locked.pins.items()}
    assert names["numpy"] == numpy and locked.pins["numpy"].source == "recorded"
    assert names["pandas"] == metadata.version("pandas")
    assert locked.pins["pandas"].source == "installed"
    assert names["starlette"] == metadata.version("starlette")
    # Transitive: pandas needs python-dateutil, which needs six.
    assert "python-dateutil" in names and "six" in names
    for absent in ("onnxruntime", "pytest", "psycopg", "modelport", "pip", "setuptools"):
        assert absent not in names
    assert locked.notes == []
    text = locked.requirements_txt("made for a test")
    assert text.startswith("# made for a test\n")
    assert f"numpy=={numpy}\n" in text


def test_recorded_version_wins_and_is_noted() -> None:
    installed = metadata.version("skops")
    older = "0.10.0" if installed != "0.10.0" else "0.11.0"
    locked = lock({"skops": older})
    assert locked.pins["skops"].version == older
    assert locked.notes and "skops" in locked.notes[0] and installed in locked.notes[0]


def test_recorded_version_outside_modelports_requirement_is_refused() -> None:
    with pytest.raises(ConflictError, match=r"numpy 1\.20\.0 \(recorded at registration\) "
                                            r"does not satisfy 'numpy.*', required by \w+"):
        lock({"numpy": "1.20.0"})


def test_flavor_library_extras_are_followed() -> None:
    locked = lock({}, roots=("onnxruntime",))
    assert locked.pins["onnxruntime"].version == metadata.version("onnxruntime")


def test_library_not_installed_cannot_be_locked() -> None:
    with pytest.raises(InvalidInputError, match="no-such-dist-xyz is needed at run time"):
        lock({}, roots=("no-such-dist-xyz",))
    # A recorded one is pinned as recorded all the same (pip resolves its dependencies).
    assert lock({"no-such-dist-xyz": "1.0"}).pins["no-such-dist-xyz"].version == "1.0"


def test_malformed_recorded_version() -> None:
    with pytest.raises(InvalidInputError, match="invalid requirement"):
        lock({"numpy": "not a version"})
