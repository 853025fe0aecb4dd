"""What a gate found: one ``Check`` per rule or budget, gathered in a ``GateReport``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Check:
    """One verdict: its name, whether it passed, what was seen and what was required.

    A skipped check (a champion-relative rule with no champion) counts as passed.
    """

    name: str
    kind: str  # "predict", "rule", "latency", "signature" or "dataset"
    passed: bool
    observed: float | str | None
    expected: str
    message: str = ""
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class GateReport:
    """The outcome of gating one candidate version (against a champion, if any)."""

    model: str
    version: int
    candidate: str
    champion: str | None
    against: str | None
    task: str
    averaging: str | None
    rows: int
    source: str
    target: str
    metrics: dict[str, dict[str, float | None]]  # "candidate" and, with one, "champion"
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    gate_id: int | None = None
    latency: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when every check passed (or was skipped)."""
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    @property
    def champion_version(self) -> int | None:
        """The champion's version number, or None without a champion."""
        return int(self.champion.rsplit("/", 1)[1]) if self.champion else None

    def with_id(self, gate_id: int) -> GateReport:
        """The same report, knowing the id it was stored under."""
        return replace(self, gate_id=gate_id)

    def summary(self) -> str:
        """One line: passed, or which checks failed."""
        if self.passed:
            return f"gate passed: {self.candidate} ({len(self.checks)} checks)"
        names = ", ".join(c.name for c in self.failures)
        return (f"gate failed: {self.candidate}: {len(self.failures)} of {len(self.checks)} "
                f"checks failed ({names})")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``--json`` prints and the registry stores)."""
        d = asdict(self)
        d["checks"] = [c.to_dict() for c in self.checks]
        d["notes"] = list(self.notes)
        d["passed"] = self.passed
        d["champion_version"] = self.champion_version
        return d


__all__ = ["Check", "GateReport"]
