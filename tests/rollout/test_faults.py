"""The controller when the database goes away for a while: it keeps trying, acts on
nothing meanwhile, and carries on from the registry once it is back."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelport.client import Registry
from modelport.registry.entities import RolloutStatus
from modelport.rollout.controller import Controller
from tests.rollout.conftest import Servers, start


@contextmanager
def database_gone(reg: Registry) -> Iterator[None]:
    """The SQLite file (and its WAL) moved away and a folder put in its place, so every
    new connection fails as with a lost volume; put back afterwards."""
    db = Path(reg.settings.database_url.removeprefix("sqlite:///"))
    aside = db.parent / "aside"
    aside.mkdir()
    reg.store.engine.dispose()  # type: ignore[attr-defined]
    moved = [p for p in db.parent.glob(db.name + "*") if p.is_file()]
    for p in moved:
        shutil.move(p, aside / p.name)
    db.mkdir()
    try:
        yield
    finally:
        db.rmdir()
        for p in moved:
            shutil.move(aside / p.name, p)


def test_controller_rides_out_a_database_outage(sqlite_registry: Registry,
                                                iris_models: list[object]) -> None:
    reg = sqlite_registry
    for model in iris_models[:2]:
        reg.log_model(model, "iris")
    reg.set_alias("iris", "champion", 1)
    servers = Servers(reg)
    rid = start(reg)
    controller = Controller(reg, holder="controller@t:1")
    for sid in ("s1", "s2"):
        servers.state(sid, 1, "ready")
        servers.state(sid, 2, "ready")
    assert [m.kind for m in controller.tick()] == ["step_started"]
    with database_gone(reg):
        for _ in range(3):
            assert controller.tick() == []
        assert not controller.leader
    assert controller.tick() == [] and controller.leader
    assert reg.deployments.rollout(rid).step_index == 0
    servers.serve("s1", 2, 30, errors=30)
    [move] = controller.tick()
    assert move.kind == "rolled_back"
    assert reg.deployments.rollout(rid).status is RolloutStatus.ROLLED_BACK
    controller.release()
