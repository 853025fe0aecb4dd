"""The per-request metrics kept as plain numbers export what prometheus-client's own
metrics export for the same observations; multiprocess mode still goes through files."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.parser import text_string_to_metric_families

from modelport.serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, ServerMetrics
from modelport.serving.tallies import (
    BATCH,
    COMPUTE,
    INFLIGHT,
    LATENCY,
    QUEUE,
    REQUESTS,
    TallyCollector,
)

# Values on bucket bounds, between them, below the first and beyond the last.
LATENCIES = [0.0001, 0.0005, 0.0007, 0.001, 0.004, 0.25, 3.0, 10.0, 42.0]
ROWS = [1, 3, 64, 65, 2000]


def _samples(text: str) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], float]]:
    """(family, type, sample, labels, value) in order; _created values are times: 0."""
    found = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            value = 0.0 if s.name.endswith("_created") else s.value
            found.append((family.name, family.type, s.name, tuple(sorted(s.labels.items())),
                          value))
    return found


def _help_and_type_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def _reference() -> tuple[CollectorRegistry, dict[str, object]]:
    reg = CollectorRegistry()
    labels = ("model", "version")
    return reg, {
        "requests": Counter(*REQUESTS, (*labels, "protocol", "status"), registry=reg),
        "latency": Histogram(*LATENCY, labels, buckets=LATENCY_BUCKETS, registry=reg),
        "queue": Histogram(*QUEUE, labels, buckets=LATENCY_BUCKETS, registry=reg),
        "compute": Histogram(*COMPUTE, labels, buckets=LATENCY_BUCKETS, registry=reg),
        "batch": Histogram(*BATCH, labels, buckets=BATCH_BUCKETS, registry=reg),
        "inflight": Gauge(*INFLIGHT, ("model",), registry=reg),
    }


def test_plain_tallies_export_what_prometheus_client_would() -> None:
    reg, ref = _reference()
    ours = CollectorRegistry()
    collector = TallyCollector(LATENCY_BUCKETS, BATCH_BUCKETS)
    ours.register(collector)
    for model, version in [("iris", "1"), ("iris", "2"), ("_unknown", "")]:
        dep = collector.deployment(model, version)
        for protocol, status in [("oip", 200), ("oip", 200), ("simple", 400), ("oip", 503)]:
            dep.answered(protocol, status)
            ref["requests"].labels(model, version, protocol, str(status)).inc()  # type: ignore[attr-defined]
        if model == "_unknown":
            continue  # failed requests only: counted, never observed (no histogram series)
        for value in LATENCIES:
            for name in ("latency", "queue", "compute"):
                getattr(dep, name).observe(value)
                ref[name].labels(model, version).observe(value)  # type: ignore[attr-defined]
        for rows in ROWS:
            dep.batch.observe(rows)
            ref["batch"].labels(model, version).observe(rows)  # type: ignore[attr-defined]
    for model, moves in [("iris", (1, 1, -1)), ("_unknown", (1, -1))]:
        level = collector.level(model)
        for move in moves:
            (level.inc if move > 0 else level.dec)()
            ref_child = ref["inflight"].labels(model)  # type: ignore[attr-defined]
            (ref_child.inc if move > 0 else ref_child.dec)()

    expected, got = generate_latest(reg).decode(), generate_latest(ours).decode()
    assert _help_and_type_lines(got) == _help_and_type_lines(expected)
    assert sorted(_samples(got)) == sorted(_samples(expected))
    assert "modelport_request_duration_seconds_created" in got  # the _created series too


def test_a_fresh_server_exports_the_families_without_series() -> None:
    text = ServerMetrics().render().decode()
    for name, _ in (REQUESTS, LATENCY, QUEUE, COMPUTE, BATCH, INFLIGHT):
        assert f"# TYPE {name}" in text
    assert "modelport_requests_total{" not in text  # nothing counted yet


def test_server_metrics_record_through_the_plain_tallies() -> None:
    metrics = ServerMetrics()
    dep = metrics.deployment("iris", "3")
    assert metrics.deployment("iris", "3") is dep  # one object per deployment
    dep.answered("oip", 200)
    dep.latency.observe(0.002)
    metrics.inflight_of("iris").inc()
    samples = {(s[2], s[3]): s[4] for s in _samples(metrics.render().decode())}
    ok = (("model", "iris"), ("protocol", "oip"), ("status", "200"), ("version", "3"))
    assert samples[("modelport_requests_total", ok)] == 1.0
    assert samples[("modelport_request_duration_seconds_count",
                    (("model", "iris"), ("version", "3")))] == 1.0
    assert samples[("modelport_inflight_requests", (("model", "iris"),))] == 1.0


def test_multiprocess_mode_records_through_prometheus_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # prometheus-client picks file-backed values when it is imported; a worker process
    # imports it with the variable already set, this test process did not.
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    first, second = ServerMetrics(), ServerMetrics()  # two workers' views of one directory
    for metrics in (first, second):
        dep = metrics.deployment("iris", "1")
        dep.answered("oip", 200)
        dep.latency.observe(0.002)
        dep.batch.observe(4)
        metrics.inflight_of("iris").inc()
    assert list(tmp_path.iterdir())  # the values went to files, where workers meet
    samples = {(s[2], s[3]): s[4] for s in _samples(first.render().decode())}
    ok = (("model", "iris"), ("protocol", "oip"), ("status", "200"), ("version", "1"))
    labels = (("model", "iris"), ("version", "1"))
    assert samples[("modelport_requests_total", ok)] == 2.0
    assert samples[("modelport_request_duration_seconds_count", labels)] == 2.0
    assert samples[("modelport_batch_size_rows_sum", labels)] == 8.0
    assert samples[("modelport_inflight_requests", (("model", "iris"),))] == 2.0
