"""The live web dashboard ``modelport serve`` shows at ``/dashboard``.

Read-only views of the registry (models, versions, aliases, deployments, rollouts,
alerts) and of the monitoring store (drift, realized metrics), with charts drawn by the
vendored uPlot library. ``routes`` holds the HTTP side, ``snapshot`` builds the JSON,
``sampler`` turns the fleet's cumulative counters into chart series.
"""
