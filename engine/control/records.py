"""Signed records of what operators did to the live system outside any incident.

An action taken with an incident id is an event of that incident (``mitigation.applied`` with the
person as actor), so it becomes one of the incident's receipts. Many operator actions belong to no
incident: a rollback sequence after the incident closed, a kill switch, a fault injected for a
drill, a rate limit set as a precaution. Each of those is written as an ``engine.operator_action``
receipt through the live engine's :class:`~engine.receipts.ReceiptSink` (``append_receipt``):
signed, in the same hash-chained ledger, with no incident id (so incident ordering rules do not
apply), naming the person, the command, its arguments and the state before and after. When an
action is also recorded on an incident, the receipt names that incident in its evidence.
"""
from __future__ import annotations

from typing import Any, Callable

OPERATOR_ACTION = "engine.operator_action"


def receipt_safe(value: Any) -> Any:
    """Values the canonical JSON profile accepts: floats become integers (rounded), tuples lists,
    anything else text. Keys become strings."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            return str(value)
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return int(round(value))
    if isinstance(value, dict):
        return {str(k): receipt_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [receipt_safe(v) for v in value]
    return str(value)


class OperatorLog:
    """Writes ``engine.operator_action`` receipts (when a sink is attached) and tells the engine's
    notice listeners (the console, ``ggen watch``) in any case."""

    def __init__(self, engine: Any, sink: Callable[..., Any] | None = None) -> None:
        self.engine = engine
        self.sink = sink  # ReceiptSink.append_receipt, or None when receipts are off
        self.errors: list[str] = []

    def record(
        self,
        *,
        operation: str,
        actor: str,
        status: str,
        summary: str,
        args: dict[str, Any] | None = None,
        target: str | None = None,
        before: Any = None,
        after: Any = None,
        results: list[dict[str, Any]] | None = None,
        incident_id: str | None = None,
        reason: str = "",
    ) -> str | None:
        """Record one operator action; returns the receipt id (None without a ledger)."""
        evidence = receipt_safe(
            {
                "operation": operation,
                "status": status,  # applied | planned | refused | failed | no_change
                "args": args or {},
                "target": target,
                "before": before,
                "after": after,
                "results": results or [],
                "incident_id": incident_id,
                "reason": reason,
            }
        )
        now = self.engine.now_ms
        self.engine._notice("operator.action", f"{actor}: {summary}", actor=actor, operation=operation, status=status, incident_id=incident_id)
        if self.sink is None:
            return None
        try:
            stored = self.sink(
                OPERATOR_ACTION,
                None,
                evidence=evidence,
                actor=f"person:{actor}",
                service=target if isinstance(target, str) and target in getattr(getattr(self.engine, "fleet", None), "services", {}) else None,
                region=getattr(getattr(self.engine, "fleet", None), "serving", None),
                source_signal="operator",
                summary=summary,
                observed_at_ms=now,
                recorded_at_ms=now,
            )
        except Exception as exc:  # a ledger problem is shown, never fatal to the action
            msg = f"operator receipt for {operation} not written: {type(exc).__name__}: {exc}"
            self.errors.append(msg)
            self.engine._notice("receipt.error", msg)
            return None
        return getattr(stored, "receipt_id", None)
