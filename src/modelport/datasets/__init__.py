"""Datasets: versioned, content-addressed tabular data with schema, rows, profile and
fingerprint, and what changed between two versions.

``Registry.datasets`` (:class:`Datasets`) registers CSV/Parquet files and frames,
reads them back digest-checked, and diffs them; ``log_model(training_data=...,
eval_data=...)`` links a model version to dataset versions through it. The rows live
in the registry (``modelport.registry.datasets``), the bytes in the artifact store.
"""

from modelport.datasets.diff import ColumnChange, DatasetDiff, FeatureChange, schema_changes
from modelport.datasets.facade import Datasets, Prepared

__all__ = ["ColumnChange", "DatasetDiff", "Datasets", "FeatureChange", "Prepared",
           "schema_changes"]
