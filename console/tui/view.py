"""What the console shows: a :class:`ConsoleView` of the engine, read by the session.

The reading itself lives in :mod:`engine.view` (the engine's half: it runs in this
process for ``ggen console``, or in the engine's process for ``ggen console --attach``, which
receives the same view as JSON over the control socket). :func:`read_view` runs in a worker
thread four times a second and asks the session, which knows where its engine is.
"""
from __future__ import annotations

from typing import Any

from engine.view import (
    SPARK_SAMPLES,
    BreakerRow,
    ConsoleView,
    CriterionRow,
    EventRow,
    IncidentDetail,
    IncidentRow,
    QueueRow,
    RegionRow,
    ServiceRow,
    SessionMetrics,
    StepRow,
    ack_state,
    alert_floors,
    incident_order,
    incident_row,
    session_metrics,
)

__all__ = [
    "SPARK_SAMPLES",
    "BreakerRow",
    "ConsoleView",
    "CriterionRow",
    "EventRow",
    "IncidentDetail",
    "IncidentRow",
    "QueueRow",
    "RegionRow",
    "ServiceRow",
    "SessionMetrics",
    "StepRow",
    "ack_state",
    "alert_floors",
    "incident_events",
    "incident_order",
    "incident_row",
    "read_view",
    "session_metrics",
]


def read_view(session: Any, selected_id: str | None = None, spark_samples: int = SPARK_SAMPLES) -> ConsoleView:
    """Everything the main screen shows, copied from the session's engine in one pass."""
    return session.read_view(selected_id, spark_samples)


def incident_events(session: Any, incident_id: str) -> tuple[IncidentRow, list[EventRow]] | None:
    """One incident's event log (for the timeline screen)."""
    return session.incident_events(incident_id)
