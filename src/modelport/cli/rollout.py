"""``modelport rollout ...``, ``modelport rollback`` and ``modelport controller``."""

from __future__ import annotations

import signal
import threading
import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelport.cli.output import console, info, print_json, when
from modelport.cli.state import state
from modelport.errors import InvalidInputError
from modelport.registry.entities import Deployment, DeploymentEvent, Rollout

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Endpoint = Annotated[str, typer.Argument(help="The endpoint (deployment) name, e.g. iris.")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the history).")]


def _pairs(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InvalidInputError(f"--query expects NAME=PROMQL, got {item!r}")
        out[key] = value
    return out


@app.command("start")
def start(
    ctx: typer.Context,
    endpoint: Endpoint,
    candidate: Annotated[str, typer.Option("--candidate", help="models:/iris/4, iris/4...")],
    strategy: Annotated[str, typer.Option("--strategy", help="canary, shadow or bluegreen.")
                        ] = "canary",
    steps: Annotated[str | None, typer.Option(
        "--steps", help="Canary weights in percent, ending at 100 (default 5,25,50,100).")
    ] = None,
    step_duration: Annotated[str | None, typer.Option(
        "--step-duration", help="How long each step is held: 500ms, 60s, 2m, 1h.")] = None,
    step_requests: Annotated[int | None, typer.Option(
        "--step-requests", help="Candidate requests each step needs.")] = None,
    require_gate: Annotated[bool, typer.Option(
        "--require-gate", help="Refuse a candidate without a passed quality gate.")] = False,
    sticky_header: Annotated[str | None, typer.Option(
        "--sticky-header", help="Request header pinning a client to one side.")] = None,
    max_error_rate: Annotated[float | None, typer.Option("--max-error-rate")] = None,
    max_error_increase: Annotated[float | None, typer.Option("--max-error-increase")] = None,
    max_p99_ms: Annotated[float | None, typer.Option("--max-p99-ms")] = None,
    max_p99_ratio: Annotated[float | None, typer.Option("--max-p99-ratio")] = None,
    min_agreement: Annotated[float | None, typer.Option("--min-agreement")] = None,
    max_shift: Annotated[float | None, typer.Option("--max-shift")] = None,
    min_requests: Annotated[int | None, typer.Option("--min-requests")] = None,
    ready_timeout: Annotated[str | None, typer.Option(
        "--ready-timeout", help="Time every server gets to load the candidate.")] = None,
    analysis: Annotated[str, typer.Option("--analysis", help="builtin or prometheus.")
                        ] = "builtin",
    prometheus_url: Annotated[str | None, typer.Option("--prometheus-url")] = None,
    query: Annotated[list[str] | None, typer.Option(
        "--query", help="NAME=PROMQL with $endpoint, $version, $window (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a rollout of a candidate version on an endpoint."""
    from modelport.control.facade import StartOptions

    options = StartOptions(
        candidate=candidate, strategy=strategy, steps=steps, step_duration=step_duration,
        step_requests=step_requests, require_gate=require_gate, sticky_header=sticky_header,
        max_error_rate=max_error_rate, max_error_increase=max_error_increase,
        max_p99_ms=max_p99_ms, max_p99_ratio=max_p99_ratio, min_agreement=min_agreement,
        max_shift=max_shift, min_requests=min_requests, ready_timeout=ready_timeout,
        analysis=analysis, prometheus_url=prometheus_url, queries=_pairs(query))
    rollout, dep = state(ctx).control().rollout_start(endpoint, options)
    if as_json:
        print_json({"rollout": rollout.to_dict(), "deployment": dep.to_dict()})
        return
    info(f"rollout #{rollout.id}: {rollout.strategy} of {rollout.model_name}/"
         f"{rollout.candidate} on {endpoint!r} (stable {rollout.model_name}/{rollout.stable}), "
         f"steps {', '.join(f'{s:g}%' for s in rollout.steps)}; the controller gives it "
         "traffic once every server has loaded it")


def _status_view(items: list[Any]) -> Group:
    parts: list[Any] = []
    if not items:
        parts.append(Text("no active rollout"))
    for item in items:
        parts.extend(_one_status(item.rollout, item.deployment, item.assessment, item.note))
    return Group(*parts)


def _one_status(r: Rollout, dep: Deployment, seen: Any, note: str) -> list[Any]:
    head = Table(show_header=False, box=None)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("endpoint", Text(f"{r.deployment}  (rollout #{r.id}, {r.strategy}, by "
                                  f"{r.created_by})"))
    head.add_row("status", Text(r.status.value + (f": {r.reason}" if r.reason else "")))
    head.add_row("versions", f"candidate {r.model_name}/{r.candidate}, stable "
                             f"{r.model_name}/{r.stable}")
    head.add_row("step", f"{min(r.step_index + 1, len(r.steps))}/{len(r.steps)} "
                         f"({', '.join(f'{s:g}' for s in r.steps)}), started "
                         f"{when(r.step_started_at)}")
    head.add_row("traffic", f"mode {dep.mode.value if dep.mode else '-'}, candidate weight "
                            f"{dep.weight:g}%")
    out: list[Any] = [head]
    if seen is None:
        out.append(Text(note))
        return out
    m = seen.measurements
    table = Table("metric", "candidate", "stable", title=f"window {seen.elapsed:.1f}s")
    for name in sorted(set(m.candidate) | set(m.stable)):
        table.add_row(name, _num(m.candidate.get(name)), _num(m.stable.get(name)))
    checks = Table("check", "value", "limit", "result")
    for c in seen.verdict.checks:
        mark = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]waiting[/]"}
        checks.add_row(c.name, _num(c.value), _num(c.limit), mark[c.passed])
    out += [table, checks, Text(f"verdict: {seen.verdict.outcome} ({seen.verdict.reason})")]
    return out


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command("status")
def status(
    ctx: typer.Context,
    endpoint: Annotated[str | None, typer.Argument(help="One endpoint (default: all).")
                        ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until the rollout ends.")
                     ] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, max=60.0,
                                            help="Seconds between refreshes.")] = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Show rollouts: step, weight, window metrics of candidate and stable, verdict."""
    from rich.live import Live

    if watch and as_json:
        raise InvalidInputError("--watch is for people; use --json without it in scripts")
    ctl = state(ctx).control()
    items = ctl.rollout_status(endpoint)
    if as_json:
        print_json([i.to_dict() for i in items])
        return
    if not watch:
        console().print(_status_view(items))
        return
    try:
        with Live(_status_view(items), console=console(), refresh_per_second=4) as live:
            while any(i.rollout.status.active for i in items):
                time.sleep(interval)
                items = ctl.rollout_status(endpoint)
                live.update(_status_view(items))
    except KeyboardInterrupt:
        return


def _moved(r: Rollout, dep: Deployment, as_json: bool, what: str) -> None:
    if as_json:
        print_json({"rollout": r.to_dict(), "deployment": dep.to_dict()})
    else:
        info(f"rollout #{r.id} on {dep.name!r} {what}: stable {dep.model_name}/{dep.stable}, "
             f"candidate {dep.candidate or '-'} at {dep.weight:g}%")


@app.command("promote")
def promote(ctx: typer.Context, endpoint: Endpoint, as_json: JsonOpt = False) -> None:
    """Skip the remaining steps: the candidate becomes stable now."""
    _moved(*state(ctx).control().rollout_move(endpoint, "promote"), as_json, "promoted")


@app.command("pause")
def pause(ctx: typer.Context, endpoint: Endpoint, as_json: JsonOpt = False) -> None:
    """Hold the current step (failing analysis still rolls back)."""
    _moved(*state(ctx).control().rollout_move(endpoint, "pause"), as_json, "paused")


@app.command("resume")
def resume(ctx: typer.Context, endpoint: Endpoint, as_json: JsonOpt = False) -> None:
    """Go on from the held step (its window starts afresh)."""
    _moved(*state(ctx).control().rollout_move(endpoint, "resume"), as_json, "resumed")


@app.command("abort")
def abort(ctx: typer.Context, endpoint: Endpoint, reason: Reason = "",
          as_json: JsonOpt = False) -> None:
    """Take the candidate out at once; stable keeps all traffic."""
    _moved(*state(ctx).control().rollout_move(endpoint, "abort", reason=reason), as_json,
           "aborted")


def _summary(e: DeploymentEvent) -> str:
    verdict = e.metrics.get("verdict") or {}
    if not verdict:
        return ""
    failed = [c["name"] for c in verdict.get("checks", []) if c.get("passed") is False]
    return verdict.get("outcome", "") + (f" ({', '.join(failed)})" if failed else "")


@app.command("history")
def history(ctx: typer.Context, endpoint: Endpoint, as_json: JsonOpt = False) -> None:
    """Every move of an endpoint: who, when, what, why, and the metrics that decided."""
    events = state(ctx).control().rollout_history(endpoint)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    # Four columns so the history stays readable on an 80-column terminal or CI log;
    # --json has every field.
    table = Table("at (UTC)", "event / by", "traffic", "why")
    for e in events:
        s = e.state
        traffic = f"v{s.get('stable') or '-'}"
        if s.get("candidate"):
            traffic += f" + v{s['candidate']} {s.get('mode') or ''} {s.get('weight', 0):g}%"
        verdict = _summary(e)
        why = e.reason + (f" [{verdict}]" if verdict else "")
        table.add_row(when(e.at), Text(f"{e.kind}\n{e.actor}"), traffic, Text(why))
    console().print(table)


def rollback(ctx: typer.Context, endpoint: Endpoint, reason: Reason = "",
             as_json: JsonOpt = False) -> None:
    """Put the previous stable version back at once (aborting any active rollout)."""
    dep = state(ctx).control().rollback(endpoint, reason=reason)
    if as_json:
        print_json(dep.to_dict())
    else:
        info(f"{endpoint!r} rolled back: stable {dep.model_name}/{dep.stable} "
             f"(previous {dep.model_name}/{dep.previous})")


def controller(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option("--interval", min=0.02, max=10.0,
                                            help="Seconds between ticks.")] = 0.1,
    lease_ttl: Annotated[float, typer.Option("--lease-ttl", min=0.5, max=600.0,
                                             help="Seconds the lease lasts unrenewed.")
                         ] = 3.0,
) -> None:
    """Run the rollout controller until SIGTERM or Ctrl-C."""
    from modelport.rollout.controller import Controller

    reg = state(ctx).registry()
    ctl = Controller(reg, interval=interval, lease_ttl=lease_ttl)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    info(f"{ctl.holder}: watching rollouts (lease 'rollout-controller', ttl {lease_ttl:g}s)")
    ctl.run(stop)
    info(f"{ctl.holder}: stopped")
