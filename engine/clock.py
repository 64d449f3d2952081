"""Injectable clocks: the engine never reads the system time directly.

Times are integer milliseconds since the Unix epoch (UTC). Receipts forbid floats, and integer
milliseconds keep virtual and wall-clock runs byte-for-byte comparable.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol

# 2026-01-25T14:00:00Z: the day of the seed documents' example incidents.
DEFAULT_VIRTUAL_START_MS = 1_769_349_600_000


class Clock(Protocol):
    """Anything that can tell the engine what time it is."""

    def now_ms(self) -> int: ...

    def sleep_until(self, t_ms: int) -> None: ...


class VirtualClock:
    """A clock that only moves when told to. Drills, tests, training and replay run on it."""

    def __init__(self, start_ms: int = DEFAULT_VIRTUAL_START_MS) -> None:
        self._now = int(start_ms)

    def now_ms(self) -> int:
        return self._now

    def advance(self, delta_ms: int) -> int:
        if delta_ms < 0:
            raise ValueError("a virtual clock cannot go backwards")
        self._now += int(delta_ms)
        return self._now

    def sleep_until(self, t_ms: int) -> None:
        if t_ms > self._now:
            self._now = int(t_ms)


class WallClock:
    """The real time, optionally sped up (``speed`` simulated seconds per real second).

    With a speed above 1 the clock starts at the real time and then runs faster, so a console at
    ``--speed 60`` shows an hour of fleet time per real minute.
    """

    def __init__(self, speed: float = 1.0, start_ms: int | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._origin_real = time.monotonic()
        self._origin_ms = int(start_ms if start_ms is not None else time.time() * 1000)
        self._paused_at: int | None = None

    def now_ms(self) -> int:
        if self._paused_at is not None:
            return self._paused_at
        elapsed = time.monotonic() - self._origin_real
        return self._origin_ms + int(elapsed * 1000 * self.speed)

    def set_speed(self, speed: float) -> None:
        """Change the speed without a jump in time."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        now = self.now_ms()
        self._origin_real = time.monotonic()
        self._origin_ms = now
        self.speed = float(speed)

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = self.now_ms()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._origin_ms = self._paused_at
            self._origin_real = time.monotonic()
            self._paused_at = None

    def sleep_until(self, t_ms: int) -> None:
        while True:
            if self._paused_at is not None:
                time.sleep(0.05)
                continue
            remaining = t_ms - self.now_ms()
            if remaining <= 0:
                return
            time.sleep(min(remaining / 1000 / self.speed, 0.25))


def iso_utc(t_ms: int) -> str:
    """RFC 3339 UTC with millisecond precision and a ``Z``, the form receipts use."""
    dt = datetime.fromtimestamp(t_ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t_ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int:
    """Parse an ISO-8601 time (naive means UTC) into epoch milliseconds."""
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str) -> int:
    """Parse ``500ms``, ``30s``, ``5m``, ``24h``, ``7d``, ``2w`` (or a sum such as ``1h30m``).

    Raises ValueError with the offending text on anything else, including zero-length input and
    negative numbers.
    """
    import re

    t = text.strip().lower()
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", t)
    if not t or not parts or "".join(n + u for n, u in parts) != t:
        raise ValueError(f"not a duration: {text!r} (use forms like 30s, 5m, 24h, 7d)")
    return sum(int(n) * _UNITS_MS[u] for n, u in parts)


def parse_time_ref(text: str, now_ms: int) -> int:
    """A point in time as people type it in runbooks.

    Accepts ``now``, a duration meaning "that long ago" (``24h``, ``30m-ago``, ``30m ago``), an ISO
    date or date-time (naive means UTC), or epoch seconds/milliseconds.
    """
    t = text.strip()
    low = t.lower()
    if low == "now":
        return now_ms
    for suffix in ("-ago", " ago", "ago"):
        if low.endswith(suffix):
            return now_ms - parse_duration_ms(low[: -len(suffix)])
    try:
        return now_ms - parse_duration_ms(low)
    except ValueError:
        pass
    if t.isdigit():
        n = int(t)
        return n if n > 10**11 else n * 1000
    try:
        return parse_iso_ms(t)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use 30m, 24h, 7d, 30m-ago, now, or an ISO date such as 2026-01-25T14:15:00Z)"
        ) from None
