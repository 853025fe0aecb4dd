"""Progressive delivery: strategies, analysis with automatic rollback, the controller.

Rollout reaches the servers only through the desired state it writes in the registry
(``Deployment``), and learns how the candidate does only from what servers report there
(traffic counters) or from Prometheus. Modules: ``strategies`` (plans), ``analysis``
(measurements and verdicts), ``builtin`` and ``prometheus`` (providers), ``assess``
(one look at a step), ``moves`` (registry transactions), ``controller`` (the loop),
``service`` (what people run: start, promote, pause, abort, rollback, history).
"""
