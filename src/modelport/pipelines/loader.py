"""Reading ``modelport.yaml``: YAML → ``Pipeline``, every error with its file:line:column.

Besides the schema (``spec``), loading checks what only the whole file can tell:
step names are unique, every ``${step.output}`` names an earlier step that has that
output, a gate or rollout without ``candidate:`` follows a register step (whose
``uri`` becomes its candidate), and the ``tune:`` block refers only to its trial, its
study and its own parameters.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from modelport.errors import InvalidInputError
from modelport.pipelines.refs import OUTPUTS, PIPELINE_VALUES, references, strings
from modelport.pipelines.spec import Pipeline, Step
from modelport.pipelines.tunespec import tune_references

DEFAULT_FILE = "modelport.yaml"
MAX_BYTES = 1 << 20
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class PipelineFile:
    """A validated pipeline and the file it came from (its folder is where steps run)."""

    path: Path
    pipeline: Pipeline

    @property
    def folder(self) -> Path:
        """The folder the pipeline's commands run in."""
        return self.path.parent


def load_pipeline(path: str | Path = DEFAULT_FILE) -> PipelineFile:
    """Read and validate a pipeline file; any problem raises ``InvalidInputError``."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"no pipeline file {p} (create one with `modelport init`)")
    if p.stat().st_size > MAX_BYTES:
        raise InvalidInputError(f"{p} is larger than 1 MiB: not a pipeline file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{p} is not UTF-8 text: {exc.reason}") from None
    node, data = _parse(p, text)
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        raise _invalid(p, node, [_problem(e) for e in exc.errors()]) from None
    pipeline, problems = _check(pipeline)
    if problems:
        raise _invalid(p, node, problems)
    return PipelineFile(p.resolve(), pipeline)


def _parse(path: Path, text: str) -> tuple[yaml.Node, Any]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidInputError(f"{path} is empty: a pipeline needs `name:` and `steps:`")
        _no_duplicate_keys(path, node)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InvalidInputError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: a pipeline is a mapping with `name:` and `steps:`")
    return node, data


def _no_duplicate_keys(path: Path, node: yaml.Node) -> None:
    # PyYAML silently keeps the last of two equal keys; a pipeline must not lose a step.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    m = key.start_mark
                    raise InvalidInputError(
                        f"{path}:{m.line + 1}:{m.column + 1}: duplicate key {key.value!r}")
                seen.add(key.value)
            _no_duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(path, item)


def _problem(err: Any) -> tuple[Loc, str]:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return loc, f"unknown key {loc[-1]!r}{hint}"
    if kind == "missing":
        return loc[:-1], f"missing required key {loc[-1]!r}"
    return loc, str(err["msg"]).removeprefix("Value error, ")


def _allowed_keys(loc: Loc) -> list[str]:
    cls: type[BaseModel] | None = Pipeline
    free_key = False  # the next part is a key of a mapping (a parameter of the space)
    for part in loc:
        if isinstance(part, int) or cls is None or free_key:
            free_key = False
            continue
        field = next((f for n, f in cls.model_fields.items() if (f.alias or n) == part), None)
        cls = _inner_model(field.annotation) if field else None
        free_key = field is not None and typing.get_origin(field.annotation) is dict
    return [f.alias or name for name, f in cls.model_fields.items()] if cls else []


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found:
            return found
    return None


def _check(pipeline: Pipeline) -> tuple[Pipeline, list[tuple[Loc, str]]]:
    problems: list[tuple[Loc, str]] = []
    kinds: dict[str, str] = {}  # label of each earlier step → its kind
    last_register: str | None = None
    steps: list[Step] = []
    for i, step in enumerate(pipeline.steps):
        label, kind = step.label, step.kind
        if label in kinds:
            problems.append((("steps", i), f"two steps are named {label!r}: give one a `name:`"))
        problems += _check_refs(step, ("steps", i), kinds)
        spec = step.spec
        if kind in ("gate", "rollout") and spec.candidate is None:
            if last_register is None:
                problems.append((("steps", i, kind), "no candidate: give `candidate:` or put a "
                                 "register step before this one"))
            else:
                spec = spec.model_copy(update={"candidate": f"${{{last_register}.uri}}"})
                step = step.model_copy(update={"register_" if kind == "register" else kind: spec})
        kinds[label] = kind
        if kind == "register":
            last_register = label
        steps.append(step)
    if pipeline.tune is not None:
        problems += [(("tune", *loc), msg) for loc, msg in tune_references(pipeline.tune)]
    return pipeline.model_copy(update={"steps": steps}), problems


def _check_refs(step: Step, at: Loc, earlier: dict[str, str]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    dumped = step.model_dump(mode="json", by_alias=True)
    for path, text in strings({step.kind: dumped[step.kind], "env": dumped["env"]}, at):
        try:
            refs = references(text)
        except InvalidInputError as exc:
            problems.append((path, str(exc)))
            continue
        for name, output in refs:
            expected: tuple[str, ...]
            if name == "pipeline":
                ok = output in PIPELINE_VALUES
                expected = PIPELINE_VALUES
            elif name not in earlier:
                problems.append((path, f"${{{name}.{output}}}: no step named {name!r} runs "
                                       "before this one"))
                continue
            else:
                expected = OUTPUTS.get(earlier[name], ())
                ok = output in expected
            if not ok:
                has = f"has {', '.join(expected)}" if expected else "has no outputs"
                problems.append((path, f"${{{name}.{output}}}: {name!r} has no output "
                                       f"{output!r} (it {has})"))
    return problems


def _invalid(path: Path, root: yaml.Node, problems: list[tuple[Loc, str]]) -> InvalidInputError:
    lines = [f"{path}:{_where(root, loc, msg.startswith('unknown key'))}: "
             + (f"{_dotted(loc)}: {msg}" if loc else msg) for loc, msg in problems[:20]]
    if len(problems) > 1:
        lines.insert(0, f"{path} is not a valid pipeline ({len(problems)} problems):")
    return InvalidInputError("\n".join(lines), problems=[(list(loc), m) for loc, m in problems])


def _where(node: yaml.Node, loc: Loc, at_key: bool = False) -> str:
    """``line:column`` of the YAML value at ``loc`` (of its key with ``at_key``, of its
    nearest existing parent when it is missing)."""
    mark = node.start_mark
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part),
                         None)
            if match is None:
                break
            key, node = match
            # A scalar or a flow list is shown where it is; a block mapping at its key.
            mark = key.start_mark if at_key or isinstance(node, yaml.MappingNode) \
                else node.start_mark
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return f"{mark.line + 1}:{mark.column + 1}"


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


__all__ = ["DEFAULT_FILE", "PipelineFile", "load_pipeline"]
