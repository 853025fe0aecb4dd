"""The Ray engine's parts that need no Ray: flags, CPU shares, the autoscaler's target."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.errors import InvalidInputError
from modelport.serving.config import load_spec
from modelport.serving.ray_engine import (
    Scale,
    check_port,
    parse_scale,
    replica_cpus,
    target_ongoing,
)


def test_scale_from_flags() -> None:
    assert parse_scale(None, None) == Scale(1, 1)
    assert parse_scale(3, None) == Scale(3, 3)
    assert parse_scale(None, "1:4") == Scale(1, 4, autoscale=True)
    assert parse_scale(None, " 2 : 2 ") == Scale(2, 2, autoscale=True)
    assert Scale(2, 2).options(32.0) == {"num_replicas": 2}
    assert Scale(1, 4, autoscale=True).options(32.0) == {"autoscaling_config": {
        "min_replicas": 1, "initial_replicas": 1, "max_replicas": 4,
        "target_ongoing_requests": 32.0}}
    assert Scale(1, 4, autoscale=True).describe() == "1 to 4 replicas (autoscaled)"
    assert Scale(1, 1).describe() == "1 replica"


@pytest.mark.parametrize(("replicas", "autoscale", "message"), [
    (2, "1:2", "--replicas and --autoscale exclude each other"),
    (0, None, "--replicas 0: give 1 to 256"),
    (None, "4", "expected MIN:MAX"),
    (None, "1:x", "expected MIN:MAX"),
    (None, "-1:2", "expected MIN:MAX"),
    (None, "0:2", "MIN must be at least 1"),
    (None, "3:2", "MIN (3) is above MAX (2)"),
    (None, "1:1000", "MAX is at most 256"),
])
def test_bad_scale_flags_say_what_is_wrong(replicas: int | None, autoscale: str | None,
                                           message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_scale(replicas, autoscale)


def test_port_zero_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="fixed --port"):
        check_port(0)
    check_port(8080)


def test_cpu_shares_fit_the_cluster() -> None:
    assert replica_cpus(2.0, 2) == 1.0  # --replicas 2 on ray.init(num_cpus=2)
    assert replica_cpus(2.0, 4) == 0.5
    assert replica_cpus(2.0, 3) == 0.66  # rounded down: 3 x 0.66 <= 2
    assert replica_cpus(16.0, 2) == 1.0  # never more than one each
    assert replica_cpus(1.0, 256) == 0.01


def test_autoscaler_target_is_half_the_smallest_batch(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("models:\n  - {uri: a/1, batching: {max_batch_size: 16}}\n"
                      "  - {uri: b/1}\n")
    assert target_ongoing(load_spec(config, [])) == 8.0
    assert target_ongoing(load_spec(None, ["a/1"])) == 32.0
