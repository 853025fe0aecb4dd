"""Atomic target folders, image references and target resolution."""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path
from types import SimpleNamespace

import pytest

import modelport
from modelport.errors import DeploymentNotFoundError, InvalidInputError, NotFoundError
from modelport.export import selfdist
from modelport.export.imageref import parse_image
from modelport.export.outdir import staged
from modelport.export.source import resolve, slug
from modelport.export.wheel import pack


def test_new_folder_appears_whole(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    with staged(out, force=False) as stage:
        (stage / "f.txt").write_text("x")
        assert not out.exists()  # nothing visible until the block ends
    assert (out / "f.txt").read_text() == "x"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_failure_leaves_nothing_not_even_parents(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(RuntimeError), staged(out, force=False) as stage:
        (stage / "f.txt").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_non_empty_needs_force_and_force_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(InvalidInputError, match=r"not empty.*--force"), \
            staged(out, force=False):
        pytest.fail("must not get here")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    with pytest.raises(RuntimeError), staged(out, force=True) as stage:
        (stage / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert [p.name for p in out.iterdir()] == ["old.txt"]  # a failed --force keeps it
    with staged(out, force=True) as stage:
        (stage / "new.txt").write_text("new")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_empty_folder_is_fine_and_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with staged(tmp_path / "empty", force=False) as stage:
        (stage / "x").write_text("1")
    assert (tmp_path / "empty" / "x").is_file()
    (tmp_path / "file").write_text("a file")
    with pytest.raises(InvalidInputError, match="not a folder"), \
            staged(tmp_path / "file", force=True):
        pytest.fail("must not get here")


@pytest.mark.parametrize("ref", [
    "python:3.11.7-slim-bookworm", "localhost:5000/ml/iris:3", "reg.example.com/a/b_c:v1.2",
    "ghcr.io/org/img@sha256:" + "a" * 64, "x/y:1@sha256:" + "b" * 64, "[::1]:5000/x:1",
])
def test_valid_image_refs(ref: str) -> None:
    assert str(parse_image(ref)) == ref


@pytest.mark.parametrize(("ref", "needle"), [
    ("python", "not pinned"), ("python:latest", "not pinned"), ("Python:3", "not a valid"),
    ("a//b:1", "not a valid"), ("x:", "not a valid"), ("x:-1", "not a valid"),
    ("x@sha256:abc", "not a valid"), ("a b:1", "not a valid"), ("", "empty"),
    ("a" * 256 + ":1", "longer than 255"),
])
def test_invalid_image_refs(ref: str, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        parse_image(ref)


def test_resolve_uri_endpoint_and_failures(source: SimpleNamespace) -> None:
    reg = source.registry
    by_alias = resolve(reg, "models:/iris@champion")
    assert (by_alias.uri, by_alias.endpoint, by_alias.alias) == ("models:/iris/3", "iris",
                                                                 "champion")
    by_endpoint = resolve(reg, "flowers")
    assert (by_endpoint.uri, by_endpoint.endpoint) == ("models:/iris/2", "flowers")
    with pytest.raises(DeploymentNotFoundError, match="'iris' is a model"):
        resolve(reg, "iris")
    with pytest.raises(NotFoundError):
        resolve(reg, "iris@nosuch")
    with pytest.raises(InvalidInputError):
        resolve(reg, "bad name!")
    reg.deployments.create("empty-ep", "iris", None, "tester")
    with pytest.raises(DeploymentNotFoundError, match="no stable version"):
        resolve(reg, "empty-ep")


@pytest.mark.parametrize(("name", "expected"), [
    ("iris", "iris"), ("Fraud_V2.x", "fraud-v2-x"), ("__", "model"), ("a" * 80, "a" * 50)])
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_wheel_is_complete_and_reproducible(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = pack(tmp_path / "one")
    assert first.name == f"modelport-{modelport.__version__}-py3-none-any.whl"
    assert first.read_bytes() == pack(tmp_path / "two").read_bytes()
    with zipfile.ZipFile(first) as zf:
        names = set(zf.namelist())
        record = zf.read(f"modelport-{modelport.__version__}.dist-info/RECORD").decode()
        entry_points = zf.read(
            f"modelport-{modelport.__version__}.dist-info/entry_points.txt").decode()
        metadata_text = zf.read(
            f"modelport-{modelport.__version__}.dist-info/METADATA").decode()
    for needed in ("modelport/__init__.py", "modelport/export/files/entrypoint.py",
                   "modelport/registry/migrations/env.py", "modelport/py.typed"):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "modelport = modelport.cli.main:main" in entry_points
    assert len(record.splitlines()) == len(names)
    meta = Parser().parsestr(metadata_text)
    assert meta["Name"] == "modelport" and meta["Version"] == modelport.__version__
    assert sorted(meta.get_all("Requires-Dist") or []) == sorted(selfdist.requirements())
    assert "cryptography>=42" in meta.get_all("Requires-Dist")
