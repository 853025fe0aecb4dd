"""A gate report as JUnit XML, the format every CI system can show.

One ``<testsuite>`` (inside ``<testsuites>``, the root Jenkins, GitLab and the GitHub
test reporters all read), one ``<testcase>`` per check; a failed check carries
``<failure message=...>``, a skipped one ``<skipped>``. Metrics go in ``<properties>``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from modelport.errors import InvalidInputError
from modelport.gates.report import Check, GateReport


def _detail(check: Check) -> str:
    return (f"observed: {check.observed}\nexpected: {check.expected}\n"
            + (check.message or ""))


def to_junit(report: GateReport) -> bytes:
    """The report as a UTF-8 JUnit XML document."""
    failures = len(report.failures)
    skipped = sum(c.skipped for c in report.checks)
    root = ET.Element("testsuites", name="modelport gate", tests=str(len(report.checks)),
                      failures=str(failures), errors="0", time=f"{report.seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", {
        "name": f"gate {report.candidate}", "tests": str(len(report.checks)),
        "failures": str(failures), "errors": "0", "skipped": str(skipped),
        "time": f"{report.seconds:.3f}",
    })
    props = ET.SubElement(suite, "properties")
    for key, value in (("candidate", report.candidate), ("champion", report.champion or "-"),
                       ("task", report.task), ("rows", str(report.rows)),
                       ("data", report.source), ("target", report.target)):
        ET.SubElement(props, "property", name=key, value=value)
    for who, values in report.metrics.items():
        for metric, number in values.items():
            ET.SubElement(props, "property", name=f"{who}.{metric}",
                          value="-" if number is None else repr(number))
    classname = f"modelport.gate.{report.model}"
    for check in report.checks:
        case = ET.SubElement(suite, "testcase", classname=classname, name=check.name,
                             time="0")
        if check.skipped:
            ET.SubElement(case, "skipped", message=check.message)
        elif not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message or check.name,
                                    type=check.kind)
            failure.text = _detail(check)
        else:
            ET.SubElement(case, "system-out").text = _detail(check)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_junit(report: GateReport, path: str | os.PathLike[str]) -> Path:
    """Write the JUnit XML atomically (a temp file, then a rename)."""
    p = Path(path)
    if not p.parent.is_dir():
        raise InvalidInputError(f"folder for the JUnit file not found: {p.parent}")
    if p.is_dir():
        raise InvalidInputError(f"--junit {p} is a folder; give a file name")
    tmp = p.with_name(f".{p.name}.partial")
    try:
        tmp.write_bytes(to_junit(report))
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInputError(f"cannot write {p}: {exc}") from exc
    return p


__all__ = ["to_junit", "write_junit"]
