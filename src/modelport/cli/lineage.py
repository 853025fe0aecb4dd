"""``modelport lineage URI``: where a version or a dataset came from and went, as a tree."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from modelport.cli.output import console, info, print_json
from modelport.cli.state import state
from modelport.errors import InvalidInputError
from modelport.lineage import graph as g
from modelport.uri import is_dataset_uri

MAX_DEPTH = 12  # a tree deeper than this is a loop in someone's tags


def lineage(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="A model version (NAME/VERSION, NAME@ALIAS, "
                                            "models:/...) or a dataset (datasets:/NAME/V)")],
    deployed: Annotated[bool, typer.Option(
        "--deployed", help="For a dataset: which deployed versions were trained on it "
        "(datasets:/NAME asks about every version of it).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show URI's lineage: dataset → tuning study / pipeline run → model version → gates →
    rollouts → deployments."""
    from modelport.lineage import deployed_on, of_uri

    reg = state(ctx).registry()
    if deployed:
        if not is_dataset_uri(uri):
            raise InvalidInputError("--deployed asks about a dataset: give "
                                    "datasets:/NAME[/VERSION]")
        rows = deployed_on(reg, uri)
        if as_json:
            print_json(rows)
        else:
            _print_deployed(uri, rows)
        return
    graph = of_uri(reg, uri)
    if as_json:
        print_json(graph.to_dict())
        return
    console().print(render(graph))


def _print_deployed(uri: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        info(f"no deployed version was trained on {escape(uri)}")
        return
    table = Table("model version", "trained on", "deployments", "aliases", "via")
    for r in rows:
        deps = ", ".join(f"{d['deployment']} ({d['role']}, {d['share']:g}%)"
                         for d in r["deployments"])
        table.add_row(escape(r["model_version"]), escape(r["dataset"]), escape(deps),
                      escape(", ".join(r["aliases"]) or "-"),
                      escape(f"converted from {r['converted_from']}"
                             if r["converted_from"] else "-"))
    console().print(table)


def render(lineage: g.Lineage) -> Tree:
    """The graph as a rich tree from its root: upstream first, then downstream."""
    root = lineage.nodes[lineage.root]
    tree = Tree(_label(root))
    if root.kind != g.DATASET:
        _upstream(tree, lineage, root.id, None, 0)
    for edge in lineage.outgoing(root.id):
        _downstream(tree, lineage, edge, 0)
    return tree


def _upstream(branch: Tree, lineage: g.Lineage, node_id: str, came_from: str | None,
              depth: int) -> None:
    for edge in lineage.incoming(node_id):
        if edge.source == came_from or edge.relation not in g.UPSTREAM or depth > MAX_DEPTH:
            continue
        source = lineage.nodes[edge.source]
        sub = branch.add(_line(_incoming(edge), _label(source)))
        if edge.relation == g.CONVERTED:
            _upstream(sub, lineage, source.id, None, depth + 1)


def _downstream(branch: Tree, lineage: g.Lineage, edge: g.Edge, depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    target = lineage.nodes[edge.target]
    sub = branch.add(_line(_outgoing(edge), _label(target)))
    if target.kind == g.MODEL_VERSION:
        _upstream(sub, lineage, target.id, edge.source, depth + 1)
    for nxt in lineage.outgoing(target.id):
        _downstream(sub, lineage, nxt, depth + 1)


def _line(relation: str, label: str) -> str:
    return f"[dim]{relation}[/] {label}" if relation else label


def _incoming(e: g.Edge) -> str:
    if e.relation == g.TRIAL:
        value = e.attrs.get("value")
        return f"trial {escape(str(e.attrs.get('trial') or '?'))}" + (
            f" (value {escape(str(value))})" if value is not None else "") + " of"
    return {g.TRAINED: "trained on", g.EVALUATED: "evaluated on", g.PRODUCED: "made by",
            g.CONVERTED: "converted from"}.get(e.relation, e.relation)


def _outgoing(e: g.Edge) -> str:
    if e.relation == g.SERVES:
        return f"serving ({e.attrs.get('role')}, {e.attrs.get('share', 0):g}% of answers) in"
    return {g.TRAINED: "trained", g.EVALUATED: "evaluated", g.GATED: "",
            g.CANDIDATE: "candidate in", g.ROLLED_OUT: "on", g.CONVERTED: "converted to"
            }.get(e.relation, e.relation)


def _label(n: g.Node) -> str:
    a = n.attrs
    text = escape(n.label)
    if n.kind == g.DATASET:
        return f"[bold cyan]{text}[/] ({a['rows']:,} rows, {a['columns']} columns, " \
               f"{escape(a.get('source') or '-')})"
    if n.kind == g.MODEL_VERSION:
        aliases = f", @{escape(', @'.join(a['aliases']))}" if a.get("aliases") else ""
        return (f"[bold]{text}[/] ({escape(a['flavor'])}, {a['created_at'][:19]} by "
                f"{escape(a['created_by'])}{aliases})")
    if n.kind == g.PIPELINE_RUN:
        facts = [str(a[k]) for k in ("status", "git_commit") if a.get(k)]
        return text + (f" ({escape(', '.join(facts))})" if facts else "")
    if n.kind == g.GATE:
        colour = "green" if a["passed"] else "red"
        failed = f", failed: {escape(', '.join(map(str, a['failed_checks'])))}" \
            if a.get("failed_checks") else ""
        return f"[{colour}]{text}[/] ({a['created_at'][:19]} by {escape(a['created_by'])}" \
               f"{failed})"
    if n.kind == g.ROLLOUT:
        steps = "→".join(f"{s:g}%" for s in a["steps"])
        kinds = " → ".join(e["kind"] for e in a["events"])
        return f"{text} (steps {steps}; {escape(kinds) or 'no events'})"
    if n.kind == g.DEPLOYMENT and "stable" in a:
        return f"{text} (stable v{a['stable']}" + (
            f", candidate v{a['candidate']} {a['mode']} {a['weight']:g}%"
            if a.get("candidate") is not None else "") + (
            f", alias {escape(a['alias'])}" if a.get("alias") else "") + ")"
    return text


__all__ = ["lineage", "render"]
