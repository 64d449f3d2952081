"""Escalation to humans: the ladder of who is told when, and the notification outbox.

Notifications are written to an outbox, one JSON line each (channel, recipient role and name,
incident, severity, text). Delivery to real channels (webhooks, commands) reads the outbox; the
engine never blocks on a network.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import orjson

from engine.clock import iso_utc

if TYPE_CHECKING:
    from engine.policy.models import EscalationPolicy, LadderStep


class Roster(Protocol):
    """Who holds a role at a moment (the on-call roster). The default names the role's handle."""

    def who(self, role: str, at_ms: int) -> str: ...


class HandleRoster:
    """A roster with no people in it: each role is its Slack-style handle (@oncall-primary)."""

    HANDLES = {
        "primary": "@oncall-primary",
        "secondary": "@oncall-secondary",
        "tech-lead": "@tech-lead",
        "vp-engineering": "@vp-engineering",
        "eng-manager": "@manager-oncall",
    }

    def who(self, role: str, at_ms: int) -> str:
        return self.HANDLES.get(role, f"@{role}")


@dataclass
class Notification:
    """One message to one recipient through one channel."""

    id: str
    at_ms: int
    channel: str
    recipient_role: str
    recipient: str
    incident_id: str
    severity: str
    text: str
    kind: str = "page"  # page | info | update
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_utc(self.at_ms),
            "at_ms": self.at_ms,
            "channel": self.channel,
            "recipient_role": self.recipient_role,
            "recipient": self.recipient,
            "incident_id": self.incident_id,
            "severity": self.severity,
            "text": self.text,
            "kind": self.kind,
            "step": self.step,
        }


class Outbox:
    """Append-only notification log: in memory, and as JSON lines in a file when given a path."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: list[Notification] = []
        self._lock = threading.Lock()
        self.listeners: list[Callable[[Notification], None]] = []

    def put(self, n: Notification) -> None:
        with self._lock:
            self.items.append(n)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, orjson.dumps(n.to_dict()) + b"\n")
                finally:
                    os.close(fd)
        for fn in list(self.listeners):
            fn(n)


@dataclass
class LadderRun:
    """One incident walking its severity's ladder from ``started_ms`` (the first page)."""

    incident_id: str
    severity: str
    started_ms: int
    steps: list[LadderStep]
    done: set[int] = field(default_factory=set)
    cancelled: set[int] = field(default_factory=set)

    def due(self, now_ms: int, acknowledged: bool) -> list[tuple[int, LadderStep]]:
        out = []
        for i, st in enumerate(self.steps):
            if i in self.done or i in self.cancelled:
                continue
            if st.until == "ack" and acknowledged:
                self.cancelled.add(i)
                continue
            if now_ms >= self.started_ms + st.offset_s * 1000:
                self.done.add(i)
                out.append((i, st))
        return out


def ladder_for(policy: EscalationPolicy, severity: str, incident_id: str, now_ms: int) -> LadderRun:
    return LadderRun(incident_id, severity, now_ms, list(policy.ladders[severity].steps))
