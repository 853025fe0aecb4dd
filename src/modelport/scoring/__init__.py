"""Batch scoring: turning a model's predictions into output tables, in one process or on
Ray Data (``ray_batch``)."""
