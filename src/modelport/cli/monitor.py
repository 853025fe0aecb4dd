"""``modelport monitor ...`` and ``modelport feedback``: the prediction log and labels."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from modelport.cli.output import console, info, print_json
from modelport.cli.retrains import retrains
from modelport.cli.state import state
from modelport.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True)
app.command("retrains")(retrains)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RootOpt = Annotated[Path | None, typer.Option(
    "--root", envvar="MODELPORT_MONITORING",
    help="Monitoring store (default: monitoring_root in config.toml, else HOME/monitoring).")]


def _root(ctx: typer.Context, root: Path | None) -> Path:
    from modelport.monitoring.layout import default_root

    return root if root is not None else default_root(state(ctx).settings())


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"invalid --now {text!r}: use ISO 8601, e.g. "
                                "2026-12-01T12:00:00Z") from None


def feedback(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The endpoint (served model name) labelled.")],
    file: Annotated[Path, typer.Argument(help="CSV, Parquet, JSON or JSON-lines file with "
                                              "id and label columns (row optional).")],
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record delayed labels (ground truth) for logged predictions, by request id."""
    from modelport.monitoring.labels import read_label_file, record_labels
    from modelport.uri import validate_name

    validate_name(model, "endpoint name")
    labels = read_label_file(file)  # every row is checked before anything is written
    stored = record_labels(_root(ctx, root), model, labels)
    if as_json:
        print_json({"endpoint": model, "recorded": stored})
    else:
        info(f"recorded {stored:,} labels for {model}")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command()
def metrics(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint (served model name).")],
    window: Annotated[str, typer.Option("--window", help="Predictions of the last "
                                        "WINDOW: 30m, 1h, 7d ...")] = "1h",
    now: Annotated[str | None, typer.Option("--now", help="End of the window (ISO 8601; "
                                            "default: now).")] = None,
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Realized metrics per version: logged predictions scored against their labels."""
    from modelport.monitoring.realized import parse_window, realized_metrics

    result = realized_metrics(_root(ctx, root), endpoint, parse_window(window), _when(now))
    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    out.print(f"[bold]{escape(endpoint)}[/] predictions {result.since:%Y-%m-%d %H:%M:%S} → "
              f"{result.until:%Y-%m-%d %H:%M:%S} UTC: {result.labels:,} labels received, "
              f"{result.unknown:,} for unknown ids, {result.duplicates:,} duplicates")
    if not result.versions:
        info("no predictions logged in this window")
        return
    # Versions as columns, metrics as rows: stays readable on a narrow terminal.
    table = Table("", *(f"version {v.version}" for v in result.versions))
    facts = [("variants", lambda v: ", ".join(v.variants)), ("task", lambda v: v.task or "-"),
             ("predictions", lambda v: f"{v.predictions:,}"),
             ("labelled", lambda v: f"{v.labelled:,}"),
             ("duplicates", lambda v: f"{v.duplicates:,}"),
             ("invalid", lambda v: f"{v.invalid:,}")]
    for name, show in facts:
        table.add_row(name, *(show(v) for v in result.versions))
    for metric in dict.fromkeys(m for v in result.versions for m in v.metrics):
        table.add_row(metric, *(_number(v.metrics.get(metric)) for v in result.versions))
    out.print(table)
    for v in result.versions:
        for note in v.notes:
            info(f"version {v.version}: {escape(note)}")
    if result.unknown_examples:
        info("unknown ids, e.g.: " + ", ".join(map(escape, result.unknown_examples)))
    for path in result.skipped_files:
        info(f"[yellow]skipped unreadable file[/] {escape(path)}")


@app.command()
def cleanup(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", help="Keep this many whole days before "
                                      "today (UTC); older day partitions are removed.")],
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove logged predictions and labels older than the retention."""
    from modelport.monitoring.layout import cleanup as run_cleanup

    removed = run_cleanup(_root(ctx, root), days)
    if as_json:
        print_json({"removed": [str(p) for p in removed]})
    else:
        info(f"removed {len(removed)} partitions or leftover files")


@app.command("alerts")
def alerts_cmd(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint (served model name).")],
    state_: Annotated[str | None, typer.Option("--state", help="Only pending, firing or "
                                               "resolved alerts.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Current and recent alerts of an endpoint, newest first."""
    found = state(ctx).registry().alerts.list(endpoint, state=state_, limit=limit)
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    if not found:
        info(f"no alerts for {endpoint}")
        return
    table = Table("rule", "state", "severity", "value", "threshold", "since", "resolved",
                  "message")
    colour = {"firing": "red", "pending": "yellow", "resolved": "green"}
    for a in found:
        table.add_row(escape(a.rule), f"[{colour[a.state]}]{a.state}[/]", a.severity,
                      _number(a.value), _number(a.threshold),
                      f"{(a.fired_at or a.started_at):%Y-%m-%d %H:%M:%S}",
                      f"{a.resolved_at:%Y-%m-%d %H:%M:%S}" if a.resolved_at else "-",
                      escape(a.message + (f" [{a.action}]" if a.action else "")))
    console().print(table)


@app.command()
def check(
    ctx: typer.Context,
    rules_file: Annotated[Path, typer.Option("--rules", help="The alert rules (YAML: "
                                             "endpoints: {NAME: [rules]}).")],
    once: Annotated[bool, typer.Option("--once", help="Evaluate once and exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1.0, help="Seconds between "
                                            "evaluations.")] = 30.0,
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate alert rules (once, or every --interval seconds until interrupted).

    The loop evaluates an endpoint's rules only while it holds the endpoint's lease
    (alerter:ENDPOINT), shared with every `modelport serve` evaluating alerts on this
    registry; --once evaluates at once, whoever holds the leases."""
    import signal
    import threading

    from modelport.cli.alerting import alert_actions, check_retraining, retrainer_for
    from modelport.monitoring.alerts import Alerter
    from modelport.monitoring.rules import load_rules

    rules = load_rules(rules_file)  # checked completely before anything is evaluated
    check_retraining(rules)
    registry = state(ctx).registry()
    retrainer = retrainer_for(registry, _root(ctx, root), rules)
    alerter = Alerter(registry, _root(ctx, root), rules, interval=interval,
                      actions=alert_actions(registry), retrainer=retrainer)
    if not once:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):  # leases given up on the way out
            signal.signal(sig, lambda *_: stop.set())
        info(f"{alerter.holder}: checking {len(rules)} rules every {interval:g}s "
             "(one evaluator per endpoint: leases alerter:ENDPOINT; Ctrl-C stops)")
        alerter.run(stop)
        if retrainer is not None:
            retrainer.stop()
        return
    outcomes = alerter.tick()
    if retrainer is not None:  # a retraining it started runs to its end
        retrainer.wait()
    if as_json:
        print_json([{"endpoint": o.rule.endpoint, "rule": o.rule.name, "expr": o.rule.expr,
                     "value": o.value.value, "note": o.value.note, "breached": o.breached,
                     "change": o.change, "state": o.alert.state if o.alert else "ok"}
                    for o in outcomes])
        return
    table = Table("endpoint", "rule", "expression", "value", "state", "note")
    for o in outcomes:
        table.add_row(escape(o.rule.endpoint), escape(o.rule.name), escape(o.rule.expr),
                      _number(o.value.value), o.alert.state if o.alert else "ok",
                      escape(o.value.note))
    console().print(table)


@app.command()
def report(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint (served model name).")],
    window: Annotated[str, typer.Option("--window", help="Predictions of the last "
                                        "WINDOW: 30m, 1h, 24h ...")] = "24h",
    html_file: Annotated[Path | None, typer.Option("--html", help="Also write a "
                                                   "self-contained HTML report here.")] = None,
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Traffic, realized metrics, drift per feature and alerts of an endpoint."""
    from modelport.monitoring.realized import parse_window
    from modelport.monitoring.report import build, to_html

    data = build(state(ctx).registry(), _root(ctx, root), endpoint, parse_window(window))
    if html_file is not None:
        tmp = html_file.with_name(f".{html_file.name}.tmp")
        tmp.write_text(to_html(data), encoding="utf-8")
        tmp.replace(html_file)  # readers never see half a page
    if as_json:
        print_json(data)
        return
    _print_report(data)
    if html_file is not None:
        info(f"wrote {escape(str(html_file))}")


def _print_report(data: dict[str, Any]) -> None:
    out = console()
    out.print(f"[bold]{escape(str(data['endpoint']))}[/] {data['since']} → {data['until']}")
    traffic = Table("version", "requests", "errors", "error rate", "p99 ms",
                    title="Traffic (since the servers started)")
    for t in data["traffic"]:
        traffic.add_row(str(t["version"]), f"{t['requests']:,}", f"{t['errors']:,}",
                        f"{t['error_rate']:.2%}", _number(t["p99_ms"]))
    out.print(traffic)
    versions = data["realized"]["versions"]
    realized = Table("version", "predictions", "labelled", "metrics", title="Realized")
    for v in versions:
        realized.add_row(str(v["version"]), f"{v['predictions']:,}", f"{v['labelled']:,}",
                         ", ".join(f"{k} {_number(x)}" for k, x in v["metrics"].items()))
    out.print(realized)
    drift = data["drift"]
    if drift["status"] == "ok":
        table = Table("feature", "test", "statistic", "psi", "drifted", title="Drift")
        for f in drift["features"]:
            table.add_row(escape(str(f["feature"])), str(f["test"] or f["status"]),
                          _number(f["statistic"]), _number(f["psi"]),
                          "[red]yes[/]" if f["drifted"] else "no")
        out.print(table)
    else:
        info(f"drift: {escape(str(drift['note']))}")
    alerts = Table("rule", "state", "value", "message", title="Alerts")
    for a in data["alerts"]:
        alerts.add_row(escape(a["rule"]), a["state"], _number(a["value"]),
                       escape(a["message"]))
    out.print(alerts)
