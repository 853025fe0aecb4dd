"""Reading a study back: the trials table, importances, HTML and PNG plots; and where
Optuna's tables live beside the registry's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import NotFoundError
from modelport.tuning import storage as st
from modelport.tuning.report import build_report, load_study, write_html, write_png
from tests.tuning.assets import function_yaml
from tests.tuning.conftest import TuneFn


def test_the_report_shows_trials_best_importances_and_registered_versions(
        tune: TuneFn, module_name: str, sqlite_registry: Registry, tmp_path: Path) -> None:
    outcome = tune(function_yaml(module_name, trials=6), module_name, FAIL_ABOVE=5.0)
    study = load_study(sqlite_registry.settings.database_url, "clf")
    report = build_report(study, sqlite_registry)
    assert [t.number for t in report.trials] == list(range(6))
    assert report.best is not None and report.best.number == outcome.best.number  # type: ignore[union-attr]
    assert report.metric == "accuracy" and report.direction == "maximize"
    assert report.importances is not None and set(report.importances) == {"C", "fit_intercept"}
    assert sum(report.importances.values()) == pytest.approx(1.0)
    assert report.registered == [f"models:/clf/1 (trial {report.best.number})"]
    assert all(t.seconds is not None and t.seconds >= 0 for t in report.trials)
    failed = [t for t in report.trials if t.state == "fail"]
    assert all(t.note == "RuntimeError: diverged" for t in failed)
    json.dumps(report.to_dict())  # JSON-ready as it is
    html, png = tmp_path / "out" / "history.html", tmp_path / "out" / "history.png"
    write_html(study, html)
    write_png(study, png)
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Optimization History" in page
    assert "Hyperparameter Importances" in page and "plotly" in page
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in html.parent.iterdir()) == ["history.html", "history.png"]


def test_importances_need_two_complete_trials(tune: TuneFn, module_name: str,
                                              sqlite_registry: Registry) -> None:
    tune(function_yaml(module_name, trials=1), module_name)
    report = build_report(load_study(sqlite_registry.settings.database_url, "clf"))
    assert report.importances is None
    assert report.importance_note == ("importances need at least 2 complete trials (this "
                                      "study has 1)")


def test_an_unknown_study_is_a_not_found_error_naming_the_known_ones(
        tune: TuneFn, module_name: str, sqlite_registry: Registry, home: Path) -> None:
    url = sqlite_registry.settings.database_url
    with pytest.raises(NotFoundError, match="nothing was ever tuned on this registry"):
        load_study(url, "clf")
    assert not (home / "registry-optuna.db").exists()  # a report creates nothing
    tune(function_yaml(module_name, trials=1), module_name)
    with pytest.raises(NotFoundError, match=r"no study 'nope' on this registry \(studies: clf\)"):
        load_study(url, "nope")


def test_optuna_tables_do_not_touch_the_registry_schema(
        tune: TuneFn, module_name: str, sqlite_registry: Registry, home: Path) -> None:
    tune(function_yaml(module_name, trials=1), module_name)
    assert st.storage_target(sqlite_registry.settings.database_url).url == \
        f"sqlite:///{home / 'registry-optuna.db'}"
    registry_db = sa.create_engine(sqlite_registry.settings.database_url)
    with registry_db.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    registry_db.dispose()
    assert "studies" not in tables and "trials" not in tables
    from modelport.registry.db import HEAD_REVISION

    assert revision == HEAD_REVISION
    # and a fresh Registry on the same database opens (its schema check passes)
    with Registry(settings=Settings.load(home)) as again:
        assert [v.uri for v in again.list("clf")] == ["models:/clf/1"]


@pytest.mark.postgres
def test_on_postgresql_the_studies_live_in_their_own_schema_of_the_same_database(
        pg_url: str, home: Path, project: Path, module_name: str) -> None:
    from modelport.pipelines.loader import load_pipeline
    from modelport.tuning.runner import Tuner
    from tests.tuning.assets import write_project

    path = write_project(project, function_yaml(module_name, trials=2), module_name)
    with Registry(settings=Settings.load(home, database_url=pg_url)) as reg:
        outcome = Tuner(load_pipeline(path), reg).run()
        assert outcome.version is not None
        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "studies" in inspector.get_table_names(schema=st.OPTUNA_SCHEMA)
            assert "studies" not in inspector.get_table_names(schema="public")
            assert "model_versions" in inspector.get_table_names(schema="public")
        engine.dispose()
        import optuna

        # Optuna's own tools open the same studies through storage_url().
        assert optuna.get_all_study_names(st.storage_url(pg_url)) == ["clf"]
