"""What a firing alert may trigger besides its action: ``on_alert: run pipeline NAME``.

A rule with ``on_alert`` retrains its endpoint when it starts firing (the run itself is
``modelport.retraining``'s job; this module only reads the rule's keys)::

    - name: accuracy-low
      expr: accuracy < 0.8 over 1h
      on_alert: run pipeline retrain   # the pipeline named `retrain`
      pipeline_file: modelport.yaml    # default: modelport.yaml beside the rules' file
      cooldown: 1h                     # no new trigger of this endpoint for this long
      retrain_window: 6h               # labelled rows of the last 6h (default: the
                                       # rule's window, here 1h)

``on_alert`` is parsed by hand, word by word (``run``, ``pipeline``, a name); the other
three keys are refused without it, so a typo cannot go unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError, InvalidNameError
from modelport.uri import validate_name

KEYS = ("on_alert", "pipeline_file", "cooldown", "retrain_window")
DEFAULT_PIPELINE_FILE = "modelport.yaml"
DEFAULT_COOLDOWN = timedelta(hours=1)
_SYNTAX = "use 'run pipeline NAME', e.g. 'run pipeline retrain'"


@dataclass(frozen=True)
class OnAlert:
    """Run pipeline ``pipeline`` (from ``pipeline_file``) on the rows labelled in the last
    ``window``, at most once per ``cooldown`` per endpoint."""

    pipeline: str
    pipeline_file: Path
    cooldown: timedelta = DEFAULT_COOLDOWN
    window: timedelta = timedelta(hours=1)


def parse_trigger(text: Any, where: str) -> str:
    """The pipeline name of ``run pipeline NAME`` (InvalidInputError says which word is
    wrong and what was expected)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"{where}: on_alert must be text: {_SYNTAX}")
    words = text.split()
    expected = ("run", "pipeline")
    for i, word in enumerate(expected):
        if len(words) <= i:
            raise InvalidInputError(f"{where}: on_alert {text!r}: expected {word!r} after "
                                    f"{' '.join(words)!r}; {_SYNTAX}")
        if words[i].lower() != word:
            raise InvalidInputError(f"{where}: on_alert {text!r}: expected {word!r} as word "
                                    f"{i + 1}, got {words[i]!r}; {_SYNTAX}")
    if len(words) < 3:
        raise InvalidInputError(f"{where}: on_alert {text!r}: expected a pipeline name after "
                                f"'run pipeline'")
    if len(words) > 3:
        raise InvalidInputError(f"{where}: on_alert {text!r}: unexpected {words[3]!r} after "
                                f"the pipeline name {words[2]!r}; {_SYNTAX}")
    try:
        return validate_name(words[2], "pipeline name")
    except InvalidNameError as exc:
        raise InvalidInputError(f"{where}: on_alert {text!r}: {exc}") from None


def parse_on_alert(data: dict[str, Any], where: str, window: timedelta,
                   base: Path | None = None) -> OnAlert | None:
    """The rule's ``on_alert`` keys (None without ``on_alert``). ``window`` is the rule's
    own, the default ``retrain_window``; a relative ``pipeline_file`` is taken from
    ``base`` (default: the working directory)."""
    from modelport.monitoring.rules import parse_duration

    if "on_alert" not in data:
        stray = [k for k in KEYS[1:] if k in data]
        if stray:
            raise InvalidInputError(f"{where}: {', '.join(stray)} only apply with on_alert "
                                    "(e.g. on_alert: run pipeline retrain)")
        return None
    pipeline = parse_trigger(data["on_alert"], where)
    raw_file = data.get("pipeline_file", DEFAULT_PIPELINE_FILE)
    if not isinstance(raw_file, str) or not raw_file.strip():
        raise InvalidInputError(f"{where}: pipeline_file must be a path, got {raw_file!r}")
    file = Path(raw_file).expanduser()
    if not file.is_absolute():
        file = (base or Path.cwd()) / file
    cooldown = parse_duration(str(data.get("cooldown", "1h")), f"{where} 'cooldown'")
    retrain_window = window
    if "retrain_window" in data:
        retrain_window = parse_duration(str(data["retrain_window"]),
                                        f"{where} 'retrain_window'")
        if retrain_window <= timedelta(0):
            raise InvalidInputError(f"{where}: retrain_window must be positive")
    return OnAlert(pipeline, file.resolve(), cooldown, retrain_window)


__all__ = ["DEFAULT_COOLDOWN", "DEFAULT_PIPELINE_FILE", "KEYS", "OnAlert", "parse_on_alert",
           "parse_trigger"]
