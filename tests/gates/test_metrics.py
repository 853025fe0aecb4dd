"""Metrics recomputed with scikit-learn, task detection and evaluation-data checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelport.errors import InvalidInputError, ModelExecutionError
from modelport.gates.evaldata import load_eval
from modelport.gates.metrics import (
    Outputs,
    Task,
    as_column,
    classification_metrics,
    classification_outputs,
    detect_task,
    regression_metrics,
    regression_values,
)


@pytest.mark.parametrize(("values", "task"), [
    ([True, False, True], Task.CLASSIFICATION),
    (["cat", "dog", "cat"], Task.CLASSIFICATION),
    (pd.Categorical(["a", "b", "a"]), Task.CLASSIFICATION),
    ([0, 1, 2, 1], Task.CLASSIFICATION),
    (list(range(100)), Task.REGRESSION),
    ([0.5, 1.5, 2.0], Task.REGRESSION),
])
def test_task_detection(values: object, task: Task) -> None:
    assert detect_task(pd.Series(values)) is task


def test_binary_metrics_are_of_the_positive_class() -> None:
    y = np.array([0, 1, 1, 0, 1, 1])
    pred = np.array([0, 1, 0, 0, 1, 0])
    notes: list[str] = []
    m = classification_metrics(y, Outputs(pred), np.array([0, 1]), notes, "m")
    assert m["accuracy"] == skm.accuracy_score(y, pred)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["roc_auc"] is None and m["log_loss"] is None
    assert any("no probabilities" in n for n in notes)


def test_binary_text_labels_take_the_greater_label_as_positive() -> None:
    y = np.array(["no", "yes", "yes", "no"], dtype=object)
    pred = np.array(["no", "yes", "no", "no"], dtype=object)
    m = classification_metrics(y, Outputs(pred), np.array(["no", "yes"]), [], "m")
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="yes"))


def test_multiclass_is_macro_and_probabilities_give_auc_and_log_loss() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    proba = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .2, .7], [.3, .3, .4], [.5, .4, .1],
                      [.6, .2, .2]])
    out = classification_outputs(proba, np.array([0, 1, 2]), None)
    m = classification_metrics(y, out, np.array([0, 1, 2]), [], "m")
    assert m["f1"] == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))


def test_a_positive_class_probability_column_becomes_labels() -> None:
    out = classification_outputs(np.array([0.1, 0.8, 0.6, 0.3]), np.array([0, 1]), None)
    assert out.predictions.tolist() == [0, 1, 1, 0]
    assert out.proba is not None and out.proba[:, 1].tolist() == [0.1, 0.8, 0.6, 0.3]


def test_one_class_in_the_target_leaves_auc_out_with_a_note() -> None:
    y = np.array([1, 1, 1])
    out = Outputs(np.array([1, 0, 1]), np.array([[.2, .8], [.6, .4], [.1, .9]]),
                  np.array([0, 1]))
    notes: list[str] = []
    m = classification_metrics(y, out, np.array([1]), notes, "m")
    assert m["roc_auc"] is None and any("roc_auc" in n for n in notes)


def test_predictions_that_cannot_be_compared_with_the_target_are_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="cannot compare the predictions"):
        classification_metrics(np.array(["a", "b"], dtype=object), Outputs(np.array([0, 1])),
                               np.array(["a", "b"]), [], "m")


def test_regression_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.1, 1.9, 3.2, 3.7])
    m = regression_metrics(y, pred, [], "m")
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    notes: list[str] = []
    assert regression_metrics(np.array([0.0, 1.0]), np.array([0.1, 1.0]), notes, "m")["mape"] \
        is None
    assert any("zeros" in n for n in notes)


def test_unusable_model_output_is_a_model_failure() -> None:
    with pytest.raises(ModelExecutionError, match="returned 2 predictions for 3 rows"):
        as_column(np.array([1, 2]), 3, "the candidate")
    with pytest.raises(ModelExecutionError, match="several named outputs"):
        as_column({"a": [1], "b": [2]}, 1, "the candidate")
    with pytest.raises(ModelExecutionError, match="NaN or infinity for 1 of 2"):
        regression_values(np.array([1.0, np.nan]), "the candidate")
    assert as_column(np.array([[1], [2]]), 2, "m").tolist() == [1, 2]


def test_eval_data_checks(tmp_path: object) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    data = load_eval(frame, "y")
    assert data.task is Task.CLASSIFICATION and data.rows == 3
    assert list(data.features.columns) == ["x"]
    assert load_eval(frame, "y", "regression").target.dtype == float
    with pytest.raises(InvalidInputError, match="no column 'label'; its columns: x, y"):
        load_eval(frame, "label")
    with pytest.raises(InvalidInputError, match="no rows"):
        load_eval(frame.iloc[:0], "y")
    with pytest.raises(InvalidInputError, match="2 missing values \\(first at row 1\\)"):
        load_eval(pd.DataFrame({"x": [1, 2, 3], "y": [1.0, None, None]}), "y")
    with pytest.raises(InvalidInputError, match="no features"):
        load_eval(frame[["y"]], "y")
    with pytest.raises(InvalidInputError, match="not numeric"):
        load_eval(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "y", "regression")
    with pytest.raises(InvalidInputError, match="unknown task 'ranking'"):
        load_eval(frame, "y", "ranking")
    with pytest.raises(InvalidInputError, match="file path or a pandas DataFrame"):
        load_eval([[1, 2]], "y")
