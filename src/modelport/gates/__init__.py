"""Quality gates: judge a candidate version on evaluation data before it is rolled out.

``run_gate`` recomputes metrics for the candidate and the champion on the same rows,
applies rules (``accuracy >= 0.9``, ``f1 >= champion - 0.01``), a latency budget and a
signature-compatibility check, and stores the verdict with the version.
"""

from __future__ import annotations

from modelport.gates.metrics import Task
from modelport.gates.report import Check, GateReport
from modelport.gates.rules import Rule, parse_rule
from modelport.gates.runner import run_gate

__all__ = ["Check", "GateReport", "Rule", "Task", "parse_rule", "run_gate"]
