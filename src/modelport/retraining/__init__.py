"""Retraining on alert: a firing rule with ``on_alert: run pipeline NAME`` retrains its
endpoint on the rows it logged that got labels, through the same gates and a gradual
rollout as any version.

- ``check``: at start-up, the pipeline exists, is valid, gates and rolls out gradually;
- ``trigger``: the ``Retrainer`` the alert evaluator calls (one run per endpoint at a
  time by a lease, a cool-down, every decision in the audit log);
- ``job``: one run (export the labelled rows, ``modelport pipeline run``, the lease
  renewed meanwhile); ``outcome``: how it ended, for its audit record.

The history lives in the registry's audit log (``registry.retrains``).
"""
