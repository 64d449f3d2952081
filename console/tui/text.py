"""Small formatting pieces the console's widgets share: literal text, times, sparklines, colours."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Iterable

from rich.text import Text

from console.cli.common import safe_text
from engine.view import countdown as countdown  # the ack column's m:ss, shared with the engine's view

SPARK = "▁▂▃▄▅▆▇█"

SEVERITY_STYLE = {
    "Sev1": "bold white on red",
    "Sev2": "bold red",
    "Sev3": "bold yellow",
    "Sev4": "cyan",
}

STATE_STYLE = {
    "detected": "bold yellow",
    "mitigating": "yellow",
    "recovering": "cyan",
    "resolved": "green",
    "escalated": "bold magenta",
}

LEVEL_STYLE = {"alert": "bold red", "stale": "bold yellow", "warn": "yellow", "ok": "green", "idle": "dim"}

TYPE_SHORT = {
    "queue_backlog_overflow": "queue backlog",
    "circuit_breaker_opened": "breaker open",
    "latency_spike": "latency spike",
    "error_rate_spike": "error rate",
    "region_failover": "region failover",
}

STEP_MARK = {
    "done": ("✓", "green"),
    "running": ("▶", "bold yellow"),
    "pending": ("·", "dim"),
    "failed": ("✗", "bold red"),
    "skipped": ("–", "dim"),
}


def literal(value: object, style: str = "") -> Text:
    """Text from the engine, logs or people, shown exactly as typed.

    Rich markup stays literal because a :class:`Text` is never parsed; control characters (ANSI
    escapes) become visible ``\\x1b`` escapes so the terminal cannot interpret them.
    """
    return Text(safe_text(value), style=style, no_wrap=False)


def clock(ms: int | None) -> str:
    """``14:03:12Z`` (UTC; receipts and the engine speak UTC)."""
    if ms is None:
        return "--:--:--"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%H:%M:%SZ")


def stamp(ms: int | None) -> str:
    """``2026-01-25 14:03:12Z``."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def duration(ms: int | float | None) -> str:
    """Compact duration: ``45s``, ``3m12s``, ``1h04m``, ``2d03h``; ``-`` for none."""
    if ms is None:
        return "-"
    s = int(ms // 1000) if ms >= 0 else -int(-ms // 1000)
    sign = "-" if s < 0 else ""
    s = abs(s)
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{sign}{s // 86400}d{s % 86400 // 3600:02d}h"


UNKNOWN = "?"  # a value a real source did not provide fresh: never shown as a number


def known(v: float | None) -> bool:
    """A value that can be shown (not NaN, not None: a stale signal is unknown)."""
    return v is not None and math.isfinite(v)


def fixed(v: float | None, spec: str) -> str:
    """``format(v, spec)``, or ``?`` padded to the same width when the value is unknown."""
    if known(v):
        return format(v, spec)
    width = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
    return format(UNKNOWN, f">{width}") if width else UNKNOWN


def number(v: float) -> str:
    """A rate or count in at most five characters: ``812``, ``4.2k``, ``1.3M``; ``?`` when unknown."""
    if not known(v):
        return UNKNOWN
    a = abs(v)
    if a >= 1_000_000:
        return f"{v / 1_000_000:.1f}M"
    if a >= 10_000:
        return f"{v / 1000:.0f}k"
    if a >= 1000:
        return f"{v / 1000:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


STALE_MARK = "·"


def sparkline(values: Iterable[float], width: int, floor: float = 0.0) -> str:
    """``values`` (oldest first) as ``width`` block characters, each the maximum of its share of
    the samples, scaled from zero to the larger of the maximum and ``floor``. A flat, noisy
    signal stays flat; with an alert threshold as ``floor`` a bar is full only near it."""
    # A stale signal (NaN from a real source that stopped answering) is drawn as a gap, never as
    # a value: nothing unknown may look healthy.
    vals = [v if math.isfinite(v) else None for v in values]
    if width <= 0:
        return ""
    if not vals:
        return " " * width
    if len(vals) > width:
        n = len(vals)
        buckets = [vals[i * n // width : max(i * n // width + 1, (i + 1) * n // width)] for i in range(width)]
        vals = [max((x for x in b if x is not None), default=None) for b in buckets]
    known = [v for v in vals if v is not None]
    top = max(max(known, default=0.0), floor)
    last = len(SPARK) - 1
    if top <= 0:
        line = "".join(SPARK[0] if v is not None else STALE_MARK for v in vals)
    else:
        line = "".join(SPARK[min(last, max(0, int(round(v / top * last))))] if v is not None else STALE_MARK for v in vals)
    return line.rjust(width)


def short_id(incident_id: str) -> str:
    """The first eight hex digits of an incident's UUID (what people type)."""
    return incident_id.removeprefix("urn:uuid:")[:8]


def person(actor: str | None) -> str:
    return (actor or "").removeprefix("person:")
