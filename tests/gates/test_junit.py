"""The JUnit XML is well-formed and counts what a CI system counts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelport.errors import InvalidInputError
from modelport.gates.junit import to_junit, write_junit
from modelport.gates.report import Check, GateReport


def _report() -> GateReport:
    checks = (
        Check("predict", "predict", True, 10, "10 predictions", "ok"),
        Check("accuracy >= 0.9", "rule", False, 0.8, ">= 0.9", "accuracy 0.8 does not meet"),
        Check("f1 >= champion", "rule", True, 0.7, "f1 >= champion", "skipped: no champion",
              skipped=True),
        Check("latency", "latency", False, 12.5, "p99 <= 5 ms", 'p99 12.5 ms <"&>'),
    )
    return GateReport(model="iris", version=2, candidate="models:/iris/2", champion=None,
                      against="champion", task="classification", averaging="macro",
                      rows=10, source="eval.csv", target="y",
                      metrics={"candidate": {"accuracy": 0.8, "roc_auc": None}}, checks=checks,
                      seconds=1.5)


def test_junit_counts_and_failures() -> None:
    root = ET.fromstring(to_junit(_report()))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "2", "0", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["predict", "accuracy >= 0.9", "f1 >= champion",
                                              "latency"]
    failures = [c.find("failure") for c in cases]
    assert [f is not None for f in failures] == [False, True, False, True]
    assert failures[3].get("message") == 'p99 12.5 ms <"&>'  # type: ignore[union-attr]
    assert cases[2].find("skipped") is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["candidate.accuracy"] == "0.8" and props["candidate.roc_auc"] == "-"


def test_write_junit_is_atomic_and_checks_the_folder(tmp_path: Path) -> None:
    path = write_junit(_report(), tmp_path / "gate.xml")
    assert ET.parse(path).getroot().find("testsuite") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate.xml"]
    with pytest.raises(InvalidInputError, match="not found"):
        write_junit(_report(), tmp_path / "missing" / "gate.xml")
    with pytest.raises(InvalidInputError, match="is a folder"):
        write_junit(_report(), tmp_path)
