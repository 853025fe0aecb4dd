"""``modelport tune report``: a study's trials, its best trial, which parameters mattered
(Optuna's fANOVA importances), and the optimisation history as HTML (plotly) or PNG
(matplotlib). Files are written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import ConfigurationError, NotFoundError
from modelport.tuning import storage as st
from modelport.tuning.register import STUDY_TAG, TRIAL_TAG

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from modelport.client import Registry

MIN_FOR_IMPORTANCE = 2


@dataclass(frozen=True)
class TrialRow:
    """One trial as the report shows it."""

    number: int
    state: str  # complete, pruned, fail, interrupted, running, waiting
    value: float | None
    params: dict[str, Any]
    seconds: float | None
    note: str = ""


@dataclass
class StudyReport:
    """Everything ``tune report`` shows."""

    study: str
    direction: str
    metric: str | None
    model: str | None
    trials: list[TrialRow]
    best: TrialRow | None
    importances: dict[str, float] | None
    importance_note: str = ""
    registered: list[str] = field(default_factory=list)  # URIs of versions from this study

    @property
    def counts(self) -> dict[str, int]:
        """How many trials are in each state."""
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"study": self.study, "direction": self.direction, "metric": self.metric,
                "model": self.model, "counts": self.counts,
                "best": asdict(self.best) if self.best else None,
                "importances": self.importances, "importance_note": self.importance_note,
                "registered": self.registered, "trials": [asdict(t) for t in self.trials]}


def load_study(database_url: str, name: str) -> optuna.Study:
    """Study ``name`` of the registry at ``database_url``; NotFoundError naming the
    studies there when there is no such study."""
    import optuna

    storage = st.open_storage(database_url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = optuna.get_all_study_names(storage)
        have = f"studies: {', '.join(sorted(known))}" if known else "no study yet"
        raise NotFoundError(f"no study {name!r} on this registry ({have})") from None


def build_report(study: optuna.Study, registry: Registry | None = None) -> StudyReport:
    """The report of ``study`` (with the versions registered from it, given ``registry``)."""
    trials = study.get_trials()
    rows = [_row(t) for t in trials]
    best = None
    with contextlib.suppress(ValueError):
        best = _row(study.best_trial)
    importances, note = importances_of(study, trials)
    attrs = study.user_attrs
    model = attrs.get("modelport.model")
    report = StudyReport(study.study_name, study.direction.name.lower(),
                         attrs.get("modelport.metric"), model, rows, best, importances, note)
    if registry is not None and model:
        report.registered = _registered(registry, model, study.study_name)
    return report


def importances_of(study: optuna.Study, trials: list[FrozenTrial]
                   ) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances, or None and why there are none."""
    import optuna

    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < MIN_FOR_IMPORTANCE:
        return None, (f"importances need at least {MIN_FOR_IMPORTANCE} complete trials "
                      f"(this study has {len(complete)})")
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        return None, f"importances unavailable: {exc}"
    return {k: float(v) for k, v in found.items()}, ""


def _row(t: FrozenTrial) -> TrialRow:
    state = t.state.name.lower()
    note = ""
    if st.interrupted(t):
        state = "interrupted"
        note = str(t.user_attrs.get(st.ERROR) or "its process stopped sending heartbeats")
    elif state == "fail":
        note = str(t.user_attrs.get(st.ERROR, ""))
    elif state == "pruned" and st.PRUNED_AT in t.user_attrs:
        note = f"pruned after step {t.user_attrs[st.PRUNED_AT]}"
    seconds = t.duration.total_seconds() if t.duration is not None else None
    return TrialRow(t.number, state, t.value, dict(t.params), seconds, note)


def _registered(registry: Registry, model: str, study: str) -> list[str]:
    from modelport.errors import ModelNotFoundError

    try:
        versions = registry.list(model)
    except ModelNotFoundError:
        return []
    return [f"{v.uri} (trial {v.tags.get(TRIAL_TAG)})" for v in versions
            if v.tags.get(STUDY_TAG) == study]


def write_html(study: optuna.Study, path: Path) -> None:
    """The optimisation history (and the importances, when there are some) as one
    self-contained HTML page (plotly.js inlined: it opens offline)."""
    try:
        import optuna
        import optuna.visualization as vis
    except ImportError:
        raise ConfigurationError("HTML plots need plotly: pip install 'modelport[tuning]'"
                                 ) from None
    if not vis.is_available():
        raise ConfigurationError("HTML plots need plotly: pip install 'modelport[tuning]'")
    parts = [vis.plot_optimization_history(study).to_html(full_html=False,
                                                          include_plotlyjs=True)]
    importances, _ = importances_of(study, study.get_trials())
    if importances:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        parts.append(vis.plot_param_importances(study, evaluator=evaluator).to_html(
            full_html=False, include_plotlyjs=False))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>study {_escape(study.study_name)}</title></head><body>"
            f"<h1>study {_escape(study.study_name)}</h1>{''.join(parts)}</body></html>")
    with _atomic(path) as tmp:
        tmp.write_text(page, encoding="utf-8")


def write_png(study: optuna.Study, path: Path) -> None:
    """The optimisation history as a PNG (matplotlib, no display needed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never a window, works without a display
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as vis
    except ImportError:
        raise ConfigurationError("PNG plots need matplotlib: pip install 'modelport[tuning]'"
                                 ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        axes = vis.plot_optimization_history(study)
    figure: Any = axes.figure
    try:
        with _atomic(path) as tmp:
            figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)  # type: ignore[arg-type]


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _escape(text: str) -> str:
    import html

    return html.escape(text)


__all__ = ["StudyReport", "TrialRow", "build_report", "importances_of", "load_study",
           "write_html", "write_png"]
