"""Watching deployed models: the prediction log, delayed labels, realized metrics, drift."""
