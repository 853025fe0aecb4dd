"""Model objects → PMML documents with sklearn2pmml (the JPMML-SkLearn converter).

sklearn2pmml converts a ``PMMLPipeline``: a bare fitted estimator (or a scikit-learn
``Pipeline``) is wrapped into one with ``make_pmml_pipeline``, its input fields named
after the columns it was fitted on (``feature_names_in_``), else ``x1``..``xN`` as
sklearn2pmml does, and its target ``y``. The conversion runs in a ``java`` child process
that sklearn2pmml starts and waits for: it reads the pipeline as sklearn2pmml pickled it
and writes the PMML file, which is all modelport keeps.

The converter refuses scikit-learn releases newer than the newest it knows, patch
releases included. A patch release changes no fitted attribute, so when that is the only
objection the pipeline is pickled once more stamped with the version the converter names,
and the conversion says so in its notes; the equivalence check that follows is what
vouches for the result either way.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.errors import UnsupportedModelError

SUPPORTED = ("scikit-learn estimators and pipelines that sklearn2pmml converts (linear and "
             "logistic regression, decision trees, random forests, gradient boosting, "
             "scalers, ...)",
             "XGBoost XGBClassifier/XGBRegressor")
# Flavors whose ``native`` object is something sklearn2pmml can be handed. Not LightGBM:
# its versions are stored as the bare Booster, and sklearn2pmml takes only the wrapper.
_FLAVORS = ("sklearn", "xgboost")
# The Java exception line of the converter's report (the last one: the root cause).
_JAVA_CAUSE = re.compile(r"^(?:Exception in thread \S+ )?((?:[a-z]\w*\.)+[A-Z]\w*"
                         r"(?:Exception|Error)\b(?::[^\n]*)?)$", re.MULTILINE)
# The converter's JVM lives for one conversion: the C2 compiler and G1's threads would
# only compete with it for the cores (3x faster here with the quick compiler alone).
_JAVA_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
_TOO_NEW = re.compile(r"Scikit-Learn version '([0-9.]+)' is not supported.*?"
                      r"downgrade Scikit-Learn to version '([0-9.]+)'", re.DOTALL)


@dataclass
class PMMLConversion:
    """A converted document, and what the caller should know about how it was made."""

    xml: bytes
    columns: tuple[str, ...]  # the model's input columns, in order (may be more than
    # the document's fields: the converter drops features no split or weight uses)
    notes: list[str] = field(default_factory=list)


class _ConverterFailed(Exception):
    """The converter exited non-zero; ``text`` is what it printed."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def to_pmml(model: Any, flavor: str, n_features: int) -> PMMLConversion:
    """The PMML document of a fitted model."""
    from modelport.flavors.pmml_jvm import require_java

    if flavor not in _FLAVORS:
        raise UnsupportedModelError(
            f"cannot convert a {flavor!r} model to PMML; supported: " + "; ".join(SUPPORTED))
    java_home = str(Path(require_java()).resolve().parents[1])
    try:
        from sklearn2pmml import make_pmml_pipeline
    except ImportError as exc:
        raise UnsupportedModelError(
            "converting to PMML needs sklearn2pmml (pip install 'modelport[pmml]')") from exc
    fields = getattr(model, "feature_names_in_", None)
    active = ([str(c) for c in fields] if fields is not None
              else [f"x{i + 1}" for i in range(n_features)])
    try:
        pipeline = make_pmml_pipeline(model, active_fields=active, target_fields=["y"])
    except Exception as exc:  # sklearn2pmml's own type checks
        raise _unsupported(model, str(exc)) from exc
    try:
        return PMMLConversion(_run(pipeline, java_home), tuple(active))
    except _ConverterFailed as failed:
        older = _patch_release_refused(failed.text)
        if older is None:
            raise _unsupported(model, _java_cause(failed.text)) from None
        installed = older[0]
    try:
        with _stamped_sklearn_version(older[1]):
            xml = _run(pipeline, java_home)
    except _ConverterFailed as failed:
        raise _unsupported(model, _java_cause(failed.text)) from None
    return PMMLConversion(xml, tuple(active), [
        f"sklearn2pmml knows scikit-learn up to {older[1]}: the model (fitted with the "
        f"patch release {installed}) was handed to it as {older[1]}"])


def _run(pipeline: Any, java_home: str) -> bytes:
    from sklearn2pmml import sklearn2pmml

    with tempfile.TemporaryDirectory(prefix="modelport-pmml-") as tmp:
        out = Path(tmp) / "model.pmml"
        # sklearn2pmml prints the converter's output (and a banner) to stdout, where it
        # would corrupt `--json`; on failure, the Java exception is only in that text.
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                sklearn2pmml(pipeline, str(out), java_home=java_home, java_opts=_JAVA_OPTS)
        except Exception as exc:  # a RuntimeError that says to read the printed text
            raise _ConverterFailed(printed.getvalue() or str(exc)) from exc
        return out.read_bytes()


def _patch_release_refused(text: str) -> tuple[str, str] | None:
    """(installed, known) when the converter refused only a newer patch release."""
    match = _TOO_NEW.search(text)
    if match is None:
        return None
    installed, known = match.groups()
    if installed.split(".")[:2] != known.split(".")[:2]:
        return None  # a new minor release may change fitted attributes: no pretending
    return installed, known


@contextlib.contextmanager
def _stamped_sklearn_version(version: str) -> Iterator[None]:
    """Pickles made meanwhile record ``version`` as the scikit-learn that made them."""
    import sklearn.base

    # BaseEstimator.__getstate__ stamps each estimator with this module global.
    real = sklearn.base.__version__
    sklearn.base.__version__ = version
    try:
        yield
    finally:
        sklearn.base.__version__ = real


def _unsupported(model: Any, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"sklearn2pmml cannot convert {type(model).__name__}: {why[:300]}. Supported: "
        + "; ".join(SUPPORTED))


def _java_cause(text: str) -> str:
    """The Java exception line in the converter's report, or its first line."""
    causes = _JAVA_CAUSE.findall(text)
    if causes:
        return str(causes[-1]).strip()
    return next((line for line in text.splitlines() if line.strip()), text).strip()


__all__ = ["SUPPORTED", "PMMLConversion", "to_pmml"]
