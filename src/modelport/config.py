"""Settings: where the registry and artifacts live, and what the operator trusts.

Values come from, in order of precedence: explicit arguments, environment variables
(``MODELPORT_HOME``, ``MODELPORT_DATABASE_URL``, ``MODELPORT_ARTIFACTS``,
``MODELPORT_TRUSTED_TYPES``, ``MODELPORT_USER``), then ``$MODELPORT_HOME/config.toml``.
The trusted-type list is configuration of the operator, never read from an artifact:
a model file must not be able to vouch for itself.

Keys are read from the environment only where they are used, and never kept in
``Settings`` (whose repr could reach a log): ``MODELPORT_SIGNING_KEY``,
``MODELPORT_VERIFY_KEYS`` (``artifacts.signing``) and ``MODELPORT_ENCRYPTION_KEY``
(``artifacts.encryption``).
"""

from __future__ import annotations

import getpass
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from modelport.errors import ConfigurationError

DEFAULT_HOME = "~/.modelport"
SIGNING_KEY_ENV = "MODELPORT_SIGNING_KEY"  # PEM text or a path: signs registrations
VERIFY_KEYS_ENV = "MODELPORT_VERIFY_KEYS"  # public key paths, comma separated
ENCRYPTION_KEY_ENV = "MODELPORT_ENCRYPTION_KEY"  # base64 of 32 bytes, or a path


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one registry + artifact store."""

    home: Path
    database_url: str
    artifacts: str
    trusted_types: tuple[str, ...] = ()
    user: str = "unknown"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        artifacts: str | None = None,
        trusted_types: tuple[str, ...] | list[str] | None = None,
    ) -> Settings:
        """Resolve settings from arguments, environment and ``config.toml``."""
        env = os.environ
        home_path = Path(home or env.get("MODELPORT_HOME") or DEFAULT_HOME).expanduser()
        file_conf = _read_config_file(home_path / "config.toml")
        db = (
            database_url
            or env.get("MODELPORT_DATABASE_URL")
            or file_conf.get("database_url")
            or f"sqlite:///{home_path / 'registry.db'}"
        )
        art = (
            artifacts
            or env.get("MODELPORT_ARTIFACTS")
            or file_conf.get("artifacts")
            or str(home_path / "artifacts")
        )
        if trusted_types is None:
            raw = env.get("MODELPORT_TRUSTED_TYPES")
            trusted = (
                [t.strip() for t in raw.split(",") if t.strip()]
                if raw is not None
                else list(file_conf.get("trusted_types", []))
            )
        else:
            trusted = list(trusted_types)
        user = env.get("MODELPORT_USER") or file_conf.get("user") or _login_name()
        return cls(
            home=home_path,
            database_url=str(db),
            artifacts=str(art),
            trusted_types=tuple(trusted),
            user=str(user),
            extra={k: v for k, v in file_conf.items() if k not in _KNOWN_KEYS},
        )

    def with_trusted_types(self, types: list[str] | tuple[str, ...]) -> Settings:
        """A copy that additionally trusts ``types``."""
        return replace(self, trusted_types=tuple(dict.fromkeys((*self.trusted_types, *types))))


_KNOWN_KEYS = {"database_url", "artifacts", "trusted_types", "user"}


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    trusted = data.get("trusted_types", [])
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise ConfigurationError(f"{path}: trusted_types must be a list of strings")
    return data


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"
