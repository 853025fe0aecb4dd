"""Reference profiles: DataFrames, arrays, categories, missing values, large data, JSON."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from modelport.errors import ArtifactIntegrityError, InvalidInputError
from modelport.monitoring.profile import CATEGORICAL, NUMERIC, ReferenceProfile
from modelport.monitoring.profiler import ProfileSettings, build_reference, sample_rows


def test_numeric_feature_has_quantile_bins_with_open_ends() -> None:
    x = np.arange(1000, dtype=float)
    f = build_reference(pd.DataFrame({"x": x})).features[0]
    assert (f.name, f.kind, f.dtype, f.count, f.missing) == ("x", NUMERIC, "float64", 1000, 0)
    assert len(f.edges) == 9 and list(f.edges) == sorted(f.edges)
    assert f.edges[0] == pytest.approx(np.quantile(x, 0.1))
    assert len(f.counts) == 10 and sum(f.counts) == 1000
    assert all(c == 100 for c in f.counts)  # deciles of a uniform grid
    assert f.frequencies == pytest.approx([0.1] * 10)
    assert f.stats["min"] == 0 and f.stats["max"] == 999
    assert len(f.sample) == 1000


def test_numpy_columns_are_named_by_position() -> None:
    rng = np.random.default_rng(1)
    p = build_reference(rng.normal(size=(200, 3)))
    assert p.names == ["f0", "f1", "f2"]
    assert p.rows == 200 and all(f.kind == NUMERIC for f in p.features)


def test_categorical_kinds_text_category_bool_and_small_integers() -> None:
    rng = np.random.default_rng(2)
    n = 600
    frame = pd.DataFrame({
        "text": rng.choice(["red", "green", "blue"], size=n),
        "cat": pd.Categorical(rng.choice(["x", "y"], size=n)),
        "flag": rng.random(n) > 0.3,
        "code": rng.integers(0, 4, size=n),
        "wide": rng.integers(0, 1000, size=n),
        "const": np.full(n, 7.0),
    })
    p = build_reference(frame)
    kinds = {f.name: f.kind for f in p.features}
    assert kinds == {"text": CATEGORICAL, "cat": CATEGORICAL, "flag": CATEGORICAL,
                     "code": CATEGORICAL, "wide": NUMERIC, "const": CATEGORICAL}
    text = p.feature("text")
    assert text is not None and text.value_type == "string"
    assert set(text.categories) == {"red", "green", "blue"} and text.counts[-1] == 0
    assert sum(text.counts) == n
    code = p.feature("code")
    assert code is not None and code.value_type == "number"
    assert sorted(code.categories) == [0, 1, 2, 3]
    const = p.feature("const")
    assert const is not None and const.categories == (7,) and const.counts == (n, 0)


def test_top_categories_and_other() -> None:
    values = [f"v{i}" for i in range(30) for _ in range(30 - i)]  # v0 most frequent
    f = build_reference(pd.DataFrame({"c": values}),
                        settings=ProfileSettings(top_categories=5)).features[0]
    assert f.categories == ("v0", "v1", "v2", "v3", "v4")
    assert f.counts[:5] == (30, 29, 28, 27, 26)
    assert f.counts[-1] == len(values) - sum(f.counts[:5])
    assert f.distinct == 30


def test_missing_values_are_counted_not_binned() -> None:
    x = np.arange(100, dtype=float)
    x[:20] = np.nan
    x[20] = np.inf
    text = np.array(["a", None, "b", None] * 25, dtype=object)
    p = build_reference(pd.DataFrame({"x": x, "t": text}))
    num, cat = p.features
    assert (num.missing, num.missing_rate, sum(num.counts)) == (21, 0.21, 79)
    assert (cat.missing, cat.missing_rate, sum(cat.counts)) == (50, 0.5, 50)


def test_all_missing_column_is_profiled_as_empty() -> None:
    p = build_reference(pd.DataFrame({"x": [np.nan] * 10, "y": [None] * 10}))
    for f in p.features:
        assert f.present == 0 and f.missing_rate == 1.0 and sum(f.counts) == 0


def test_large_data_is_sampled_deterministically() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=200_000), "b": rng.exponential(size=200_000)})
    settings = ProfileSettings(sample_size=1000)
    one, two = build_reference(frame, settings=settings), build_reference(frame,
                                                                          settings=settings)
    assert one == two
    assert len(one.features[0].sample) == 1000
    assert sum(one.features[0].counts) == 200_000  # bins count every row, not the sample
    # Columns are sampled independently (a seed per column).
    assert one.features[0].sample[:5] != tuple(frame["a"].iloc[:5])
    other = build_reference(frame, settings=ProfileSettings(sample_size=1000, seed=9))
    assert other.features[0].sample != one.features[0].sample


def test_predictions_are_profiled_on_a_bounded_sample() -> None:
    frame = pd.DataFrame({"a": np.arange(50_000, dtype=float)})
    seen: list[int] = []

    def predict(rows: pd.DataFrame) -> np.ndarray:
        seen.append(len(rows))
        return (rows["a"].to_numpy() > 25_000).astype(int)

    p = build_reference(frame, predict, ProfileSettings(prediction_rows=2000))
    assert seen == [2000] and p.prediction_rows == 2000
    assert p.predictions is not None and p.predictions[0].name == "prediction"
    assert p.predictions[0].kind == CATEGORICAL


def test_two_dimensional_outputs_are_named_like_columns() -> None:
    p = build_reference(np.random.default_rng(0).random((100, 2)),
                        lambda rows: np.column_stack([rows[:, 0], 1 - rows[:, 0]]))
    assert p.predictions is not None
    assert [f.name for f in p.predictions] == ["prediction_0", "prediction_1"]


def test_a_failing_model_only_costs_the_prediction_profile() -> None:
    def predict(rows: object) -> object:
        raise ValueError("expects 4 columns")

    with pytest.warns(UserWarning, match="expects 4 columns"):
        p = build_reference(pd.DataFrame({"a": [1.0, 2.0]}), predict)
    assert p.predictions is None and "expects 4 columns" in p.note
    assert p.features[0].name == "a"


def test_json_round_trip_is_exact() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=500), "t": rng.choice(["p", "q"], size=500),
                          "k": rng.integers(0, 3, size=500)})
    p = build_reference(frame, lambda rows: rows["a"].to_numpy() * 2)
    assert ReferenceProfile.from_json(p.to_json()) == p


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"format": "other/1"}',
                                 b'{"format": "modelport.profile/1", "rows": 1}'])
def test_malformed_profile_is_an_integrity_error(raw: bytes) -> None:
    with pytest.raises(ArtifactIntegrityError):
        ReferenceProfile.from_json(raw)


@pytest.mark.parametrize("data, match", [
    (np.zeros((2, 2, 2)), "1-D/2-D"),
    (pd.DataFrame({"d": pd.date_range("2024-01-01", periods=3)}), "cannot be profiled"),
    (pd.DataFrame(), "no columns"),
])
def test_bad_training_data_is_refused_precisely(data: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        build_reference(data)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="bins"):
        ProfileSettings(bins=0)


def test_sample_rows_keeps_order_and_kind() -> None:
    frame = pd.DataFrame({"a": np.arange(100)})
    rows = sample_rows(frame, 10, seed=0)
    assert isinstance(rows, pd.DataFrame) and len(rows) == 10
    assert list(rows["a"]) == sorted(rows["a"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sample_rows(np.arange(5), 10, 0).tolist() == [0, 1, 2, 3, 4]
