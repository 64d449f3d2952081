"""The manual mitigations the console offers and their parameters.

Every name here is an action of the engine's actuator (a test checks the two lists agree). The
console only proposes a target (:func:`engine.view.action_target`, asked through the
session); the engine's safety governor and actuator decide and report.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ManualAction:
    """One action a person can trigger: what it acts on and which parameters it takes."""

    name: str
    target_kind: str  # queue | service | circuit | database | region
    description: str
    params_hint: str = ""


MANUAL_ACTIONS: tuple[ManualAction, ...] = (
    ManualAction("scale_concurrency", "queue", "Scale a tenant's consumer concurrency (empty: the depth/300 rule)", "to=N"),
    ManualAction("rate_limit", "queue", "Limit a tenant's ingest (max_per_second=none lifts it)", "max_per_second=N"),
    ManualAction("open_breaker", "circuit", "Force circuit breaker(s) OPEN: fail fast with the fallback"),
    ManualAction("close_breaker", "circuit", "Reset circuit breaker(s) to CLOSED"),
    ManualAction("override_breaker", "circuit", "Hold a breaker in a state for a while (0 closed, 1 half-open, 2 open)", "state=0 duration_ms=N"),
    ManualAction("restart_service", "service", "Restart (rolling, or full when crash-looping)"),
    ManualAction("scale_replicas", "service", "Add replicas (empty: one step)", "to=N"),
    ManualAction("prioritize_requests", "service", "Shed low-priority traffic, shrink batch sizes", "shed=0.15"),
    ManualAction("throttle", "service", "Rate-limit inbound requests (max_per_second=none lifts it)", "max_per_second=N"),
    ManualAction("create_index", "database", "Build the missing pre-approved index", "index=NAME"),
    ManualAction("rollback_deploy", "service", "Roll back to the previous (or a given) revision", "revision=N"),
    ManualAction("revert_config", "service", "Revert the last config change (or those after a time)", "before_ms=T"),
    ManualAction("disable_feature_flag", "service", "Turn off the flag turned on last (or a given one)", "flag=NAME"),
    ManualAction("optimize_query", "database", "Rewrite one slow query (it keeps part of its extra time)", "query_id=ID"),
    ManualAction("drop_index", "database", "Drop an index (the inverse of create_index)", "index=NAME"),
    ManualAction("set_compression", "service", "Response compression on (algorithm=NAME) or off (algorithm=none)", "algorithm=NAME"),
    ManualAction("failover_region", "region", "Move traffic to the standby region"),
    ManualAction("failback_region", "region", "Move traffic back (needs passing health checks)"),
    ManualAction("resolve_replication_conflicts", "region", "Settle records only one region holds", "strategy=standby-wins|timestamp-wins"),
)


def action_named(name: str) -> ManualAction:
    for a in MANUAL_ACTIONS:
        if a.name == name:
            return a
    raise KeyError(name)


def parse_params(text: str) -> dict[str, Any]:
    """``to=40 flag=new_checkout max_per_second=none`` into a dict (ints, floats, true/false/none).

    Raises ValueError naming the piece that is not ``key=value``."""
    out: dict[str, Any] = {}
    for piece in text.split():
        key, sep, raw = piece.partition("=")
        if not sep or not key:
            raise ValueError(f"parameter {piece!r} is not key=value")
        low = raw.lower()
        value: Any
        if low in ("none", "null"):
            value = None
        elif low in ("true", "false"):
            value = low == "true"
        else:
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
        out[key] = value
    return out
