"""``modelport serve`` options: command-line flags and ``serve.yaml``, validated once.

``serve.yaml``::

    models:
      - uri: models:/iris@champion      # served as "iris"
        trusted: false                  # pickle / PythonModel need true
        batching: {max_batch_size: 64, max_latency_ms: 5, max_queue_rows: 4096}
        monitoring: {sample_rate: 1.0}  # share of requests in the prediction log
        alerts:                         # rules of the endpoint "iris" (monitoring.rules)
          - {name: errors, expr: error_rate > 1% over 10m, action: rollback}
          - {name: accuracy-low, expr: accuracy < 0.8 over 1h,   # retrain; the pipeline
             on_alert: run pipeline retrain, cooldown: 1h}      # file: beside this one
      - uri: fraud/7
        name: fraud-v7
    limits: {max_body_bytes: 16777216, max_rows: 100000, request_timeout: 30}
    poll_interval: 1.0               # seconds between alias look-ups
    deployment_poll_interval: 0.2    # seconds between desired-state (deployment) polls
    monitoring: {enabled: true, root: null, interval: 60}  # prediction log, labels, gauges
    dashboard: {enabled: true, refresh_seconds: 2}          # /dashboard, chart sampling
    alerting: {enabled: true, interval: 30, lease_ttl: 15}  # the alert evaluator
    security:                        # load only versions signed by one of these keys
      require_signature: true
      verify_keys: [keys/release.pub]  # relative to this file; default $MODELPORT_VERIFY_KEYS
    auth:                  # bearer tokens (modelport tokens create); see docs/security.md
      enabled: null        # null: on unless --host is loopback (--auth, --insecure-no-auth)
      protect_metrics: true     # /metrics needs a reader token covering every model
      protect_dashboard: true   # so does /dashboard
      rate: null           # requests/s of a token created without --rate (per worker)
      burst: null
      cache_seconds: 5     # a revocation takes effect within this time
      max_failures: 10     # failed authentications per client address per minute
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelport.errors import ConfigurationError, InvalidInputError
from modelport.monitoring.rules import Rule, parse_rule
from modelport.serving.app import Limits
from modelport.serving.auth import AuthConfig
from modelport.serving.deployment import BatchingConfig
from modelport.serving.repository import Endpoint

if TYPE_CHECKING:
    from modelport.artifacts.signing import VerifyKeys


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingSpec(_Strict):
    """Batching limits of one model."""

    max_batch_size: int = Field(default=64, ge=1, le=100_000)
    max_latency_ms: float = Field(default=5.0, ge=0, le=10_000)
    max_queue_rows: int = Field(default=4096, ge=1)


class ModelMonitoringSpec(_Strict):
    """How much of one model's traffic goes into the prediction log."""

    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)


class ModelSpec(_Strict):
    """One served model."""

    uri: str
    name: str | None = None
    trusted: bool = False
    batching: BatchingSpec = BatchingSpec()
    monitoring: ModelMonitoringSpec = ModelMonitoringSpec()
    # Rule mappings as in alerts.yaml; items stay raw here (parse_rule checks them and
    # says which one is wrong) so the spec still travels to the workers as JSON.
    alerts: list[Any] = Field(default_factory=list)


class MonitoringSpec(_Strict):
    """The server's prediction log, feedback route and monitoring gauges."""

    enabled: bool = True
    root: str | None = None  # default: modelport.monitoring.layout.default_root
    interval: float = Field(default=60.0, gt=0, le=86_400)  # seconds between gauge updates
    # Day partitions older than this are removed (hourly, by each server): logging every
    # answer by default must not fill the disk of a server left running. 0 keeps all.
    retention_days: int = Field(default=7, ge=0, le=3650)


class DashboardSpec(_Strict):
    """The read-only web dashboard at ``/dashboard``."""

    enabled: bool = True
    refresh_seconds: float = Field(default=2.0, ge=0.5, le=3600)  # chart sampling period
class AlertingSpec(_Strict):
    """The alert evaluator ``modelport serve`` runs beside the server."""

    enabled: bool = True
    interval: float = Field(default=30.0, ge=1, le=86_400)  # seconds between evaluations
    lease_ttl: float = Field(default=15.0, ge=1, le=3600)  # seconds a dead one blocks others


class SecuritySpec(_Strict):
    """What a version must prove before this server loads it."""

    # Refuse (stay on the previous version, or not ready) any version not signed by
    # one of verify_keys; the keys are public key files, never stored in the registry.
    require_signature: bool = False
    verify_keys: list[str] = Field(default_factory=list)  # default: $MODELPORT_VERIFY_KEYS
class AuthSpec(_Strict):
    """Who may call the server: bearer tokens, what stays open, rate limits."""

    enabled: bool | None = None  # None: decided by ``modelport serve`` from --host
    protect_metrics: bool = True
    protect_dashboard: bool = True
    rate: float | None = Field(default=None, gt=0, le=1_000_000)
    burst: int | None = Field(default=None, ge=1, le=1_000_000)
    cache_seconds: float = Field(default=5.0, ge=0, le=300)
    max_failures: int = Field(default=10, ge=1, le=1_000_000)

    def value(self) -> AuthConfig:
        """The authenticator's settings."""
        if self.burst is not None and self.rate is None:
            raise ConfigurationError("invalid serve configuration at auth.burst: a burst "
                                     "needs auth.rate too")
        return AuthConfig(protect_metrics=self.protect_metrics,
                          protect_dashboard=self.protect_dashboard, rate=self.rate,
                          burst=self.burst, cache_seconds=self.cache_seconds,
                          max_failures=self.max_failures)


class LimitsSpec(_Strict):
    """Request limits."""

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=100_000, ge=1)
    request_timeout: float = Field(default=30.0, gt=0)
    # Model files uploaded to the control plane (POST /api/models/NAME/versions).
    max_upload_bytes: int = Field(default=1 << 30, ge=1024)


class ServeSpec(_Strict):
    """Everything ``modelport serve`` needs besides host, port and workers."""

    models: list[ModelSpec] = Field(default_factory=list)
    limits: LimitsSpec = LimitsSpec()
    poll_interval: float = Field(default=1.0, gt=0, le=3600)
    deployment_poll_interval: float = Field(default=0.2, gt=0, le=3600)
    home: str | None = None
    database_url: str | None = None
    monitoring: MonitoringSpec = MonitoringSpec()
    dashboard: DashboardSpec = DashboardSpec()
    alerting: AlertingSpec = AlertingSpec()
    security: SecuritySpec = SecuritySpec()

    def signature_keys(self) -> VerifyKeys | None:
        """The keys every loaded version must be signed by, or None (no policy).
        ConfigurationError for an unreadable key or a policy without keys."""
        sec = self.security
        if not sec.require_signature:
            if sec.verify_keys:
                raise ConfigurationError(
                    "invalid serve configuration at security.verify_keys: keys are given but "
                    "security.require_signature is false; set it to true to enforce them")
            return None
        from modelport.artifacts.signing import load_verify_keys

        try:
            return load_verify_keys(sec.verify_keys or None)
        except (InvalidInputError, ConfigurationError) as exc:
            raise ConfigurationError(
                f"invalid serve configuration at security.verify_keys: {exc}") from None
    auth: AuthSpec = AuthSpec()

    def endpoints(self) -> list[Endpoint]:
        """The repository's endpoints (URIs and names validated here)."""
        return [
            Endpoint.from_uri(m.uri, name=m.name, trusted=m.trusted,
                              batching=BatchingConfig(**m.batching.model_dump()))
            for m in self.models
        ]

    def sample_rates(self) -> dict[str, float]:
        """The prediction log's sampling rate per endpoint name."""
        return {e.name: m.monitoring.sample_rate for e, m in zip(self.endpoints(), self.models,
                                                                   strict=True)}

    def alert_rules(self) -> list[Rule]:
        """Every model's alert rules, on its served name (ConfigurationError naming
        ``models[i].alerts[j]`` for a bad one)."""
        rules: list[Rule] = []
        seen: set[tuple[str, str]] = set()
        for i, (endpoint, model) in enumerate(zip(self.endpoints(), self.models,
                                                  strict=True)):
            for j, item in enumerate(model.alerts):
                where = f"models[{i}].alerts[{j}]"
                try:
                    rule = parse_rule(endpoint.name, item, where)
                except InvalidInputError as exc:
                    raise ConfigurationError(f"invalid serve configuration at {exc}") from None
                if (rule.endpoint, rule.name) in seen:
                    raise ConfigurationError(
                        f"invalid serve configuration at {where}: endpoint "
                        f"{rule.endpoint!r} already has an alert rule named {rule.name!r}")
                seen.add((rule.endpoint, rule.name))
                rules.append(rule)
        return rules

    def limits_value(self) -> Limits:
        """The app's limits."""
        return Limits(**self.limits.model_dump(exclude={"max_upload_bytes"}))


def load_spec(path: Path | None, uris: list[str], *, trusted: bool = False,
              overrides: dict[str, Any] | None = None) -> ServeSpec:
    """Merge ``serve.yaml`` (if any) with models given on the command line."""
    data: dict[str, Any] = {}
    if path is not None:
        import yaml

        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: expected a mapping at the top level")
    _resolve_key_paths(data, path)
    _resolve_pipeline_files(data, path)
    models = list(data.get("models") or [])
    models += [{"uri": u, "trusted": trusted} for u in uris]
    data["models"] = models
    for key, value in (overrides or {}).items():
        if value is not None:
            data.setdefault("limits", {})[key] = value
    try:
        spec = ServeSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"invalid serve configuration at {where}: {first['msg']}") from exc
    if not spec.models:
        raise ConfigurationError("no model to serve: give MODEL_URI arguments or --config")
    spec.endpoints()  # validates URIs and names now, not at the first request
    spec.alert_rules()  # and every alert rule, before anything starts
    spec.signature_keys()  # and the signature policy's keys
    spec.auth.value()
    return spec


def _resolve_pipeline_files(data: dict[str, Any], path: Path | None) -> None:
    """A retraining rule's ``pipeline_file`` (default ``modelport.yaml``) is beside
    serve.yaml, wherever serve runs from."""
    from modelport.monitoring.onalert import DEFAULT_PIPELINE_FILE

    if path is None or not isinstance(data.get("models"), list):
        return
    for model in data["models"]:
        items = model.get("alerts") if isinstance(model, dict) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or "on_alert" not in item:
                continue
            raw = item.get("pipeline_file", DEFAULT_PIPELINE_FILE)
            if isinstance(raw, str) and raw.strip():  # else parse_rule says what is wrong
                item["pipeline_file"] = str((path.parent / Path(raw).expanduser()).resolve())


def _resolve_key_paths(data: dict[str, Any], path: Path | None) -> None:
    """Key paths in serve.yaml are relative to the file (workers may run elsewhere)."""
    security = data.get("security")
    if path is None or not isinstance(security, dict):
        return
    keys = security.get("verify_keys")
    if isinstance(keys, list):
        security["verify_keys"] = [
            str((path.parent / Path(k).expanduser()).resolve()) if isinstance(k, str) else k
            for k in keys]
