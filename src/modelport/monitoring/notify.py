"""Webhook notifications in Alertmanager's JSON shape; failures are logged, never fatal."""

from __future__ import annotations

import logging
import time
from typing import Any

from modelport.registry.alerts import Alert

log = logging.getLogger("modelport.monitoring")
_NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"


def payload(alert: Alert, *, description: str = "", note: str = "") -> dict[str, Any]:
    """The webhook body: Alertmanager's webhook format with one alert."""
    status = "resolved" if alert.state == "resolved" else "firing"
    labels = {"alertname": alert.rule, "endpoint": alert.endpoint,
              "severity": alert.severity}
    item = {
        "status": status, "labels": labels,
        "annotations": {"summary": alert.message, "expr": alert.expr,
                        "value": "" if alert.value is None else f"{alert.value:.6g}",
                        "threshold": f"{alert.threshold:.6g}", "description": description,
                        "note": note, "action": alert.action},
        "startsAt": (alert.fired_at or alert.started_at).isoformat(),
        "endsAt": alert.resolved_at.isoformat() if alert.resolved_at else _NEVER,
        "fingerprint": f"{alert.endpoint}/{alert.rule}/{alert.id}",
    }
    return {"version": "4", "status": status, "receiver": "modelport",
            "groupKey": f"{alert.endpoint}/{alert.rule}", "groupLabels": labels,
            "commonLabels": labels, "commonAnnotations": item["annotations"],
            "alerts": [item]}


def send(url: str, body: dict[str, Any], *, timeout: float = 5.0, retries: int = 3,
         backoff: float = 0.5) -> bool:
    """POST ``body`` to ``url``; retry failures and 5xx; True when it was accepted."""
    import httpx

    for attempt in range(1, retries + 1):
        try:
            resp = httpx.post(url, json=body, timeout=timeout)
            if resp.status_code < 500:
                if resp.status_code >= 400:
                    log.warning("webhook %s refused the alert: HTTP %s", url, resp.status_code)
                    return False
                return True
            why = f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {exc}"
        log.warning("webhook %s failed (attempt %d of %d): %s", url, attempt, retries, why)
        if attempt < retries:
            time.sleep(backoff * attempt)
    return False


__all__ = ["payload", "send"]
