"""A model's predictions as a DataFrame with stable column names."""

from __future__ import annotations

from typing import Any


def predictions_frame(predictions: Any) -> Any:
    """``prediction`` for one output column, ``prediction_0..n`` for several, the model's
    own columns for a dict or DataFrame."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, dict):
        return pd.DataFrame({k: list(np.asarray(v)) for k, v in predictions.items()})
    if type(predictions).__name__ == "DataFrame":
        return predictions
    arr = np.asarray(predictions)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return pd.DataFrame(arr, columns=[f"prediction_{i}" for i in range(arr.shape[1])])
    return pd.DataFrame({"prediction": arr.reshape(len(arr), -1)[:, 0] if arr.ndim > 1 else arr})


__all__ = ["predictions_frame"]
