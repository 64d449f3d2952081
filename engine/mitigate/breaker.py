"""The circuit breaker state machine (02-circuit-breaker-opened, 11-automated-mitigation).

CLOSED passes calls and watches them: a count rule (N consecutive errors), a rate rule (error share
over a window), a windowed count rule (at least N errors in the window) and a latency rule (P99 over
a limit for a sustained time). Any of them opens the breaker. OPEN fails fast with the configured
fallback. After the probe interval it goes HALF_OPEN and probes: in ``single`` mode one call per
interval, closing after N successes in a row; in ``fraction`` mode a share of traffic, closing once
the success share has stayed above the target for the close window. A failed probe re-opens it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.policy.models import CircuitPolicy


CLOSED, HALF_OPEN, OPEN = 0, 1, 2
STATE_NAMES = {CLOSED: "CLOSED", HALF_OPEN: "HALF_OPEN", OPEN: "OPEN"}


@dataclass(frozen=True)
class Transition:
    """A change of breaker state and why it happened."""

    at_ms: int
    from_state: int
    to_state: int
    reason: str

    @property
    def to_name(self) -> str:
        return STATE_NAMES[self.to_state]


class CircuitBreaker:
    """One breaker on one caller -> dependency edge."""

    __slots__ = (
        "name",
        "caller",
        "dependency",
        "policy",
        "state",
        "consecutive_errors",
        "_win",
        "_win_calls",
        "_win_errors",
        "_latency_since",
        "opened_at_ms",
        "half_open_at_ms",
        "next_probe_ms",
        "probe_successes",
        "_probe_win",
        "override_state",
        "override_until_ms",
        "last_trip",
        "open_count",
    )

    def __init__(self, name: str, caller: str, dependency: str, policy: CircuitPolicy) -> None:
        self.name = name
        self.caller = caller
        self.dependency = dependency
        self.policy = policy
        self.state = CLOSED
        self.consecutive_errors = 0
        self._win: deque[tuple[int, float, float]] = deque()
        self._win_calls = 0.0
        self._win_errors = 0.0
        self._latency_since: int | None = None
        self.opened_at_ms: int | None = None
        self.half_open_at_ms: int | None = None
        self.next_probe_ms = 0
        self.probe_successes = 0
        self._probe_win: deque[tuple[int, float, float]] = deque()
        self.override_state: int | None = None
        self.override_until_ms: int | None = None
        self.last_trip: dict[str, int] = {}
        self.open_count = 0

    # ------------------------------------------------------------------ observations
    @property
    def passes_traffic(self) -> float:
        """Share of calls that reach the dependency (1 when closed, the probe share when half-open)."""
        if self.state == CLOSED:
            return 1.0
        if self.state == HALF_OPEN and self.policy.probe_mode == "fraction":
            return self.policy.probe_traffic_pct / 100.0
        return 0.0

    def window_error_pct(self) -> float:
        return 100.0 * self._win_errors / self._win_calls if self._win_calls > 0 else 0.0

    def observe(
        self, now_ms: int, calls: float, errors: float, p99_ms: float, outcomes: list[bool] | tuple[bool, ...] = ()
    ) -> Transition | None:
        """Feed one tick of real traffic (CLOSED, or HALF_OPEN in fraction mode).

        ``outcomes`` is an ordered sample of individual calls (True = failed) for the count rule.
        """
        p = self.policy
        if self.override_state is not None:
            return None
        if self.state == CLOSED:
            for failed in outcomes:
                self.consecutive_errors = self.consecutive_errors + 1 if failed else 0
                if p.count and self.consecutive_errors >= p.count:
                    return self._open(now_ms, "consecutive_errors", {"consecutive_errors": self.consecutive_errors, "error_threshold_count": p.count})
            # The rate window slides by one tick (written inline: every edge observes every tick).
            w = self._win
            w.append((now_ms, calls, errors))
            win_calls = self._win_calls + calls
            win_errors = self._win_errors + errors
            limit = now_ms - p.rate_window_s * 1000
            while w and w[0][0] <= limit:
                _, c, e = w.popleft()
                win_calls -= c
                win_errors -= e
            self._win_calls = win_calls
            self._win_errors = win_errors
            if p.min_errors and win_errors >= p.min_errors:
                return self._open(now_ms, "error_count_threshold_exceeded", {"errors_in_window": int(win_errors), "min_errors": p.min_errors})
            if win_calls >= 10 and w and now_ms - w[0][0] >= (p.rate_window_s - 1) * 1000:
                pct = self.window_error_pct()
                if pct >= p.rate_pct:
                    return self._open(now_ms, "error_rate_threshold_exceeded", {"error_rate_bp": int(pct * 100), "error_threshold_bp": int(p.rate_pct * 100)})
            if p.latency_p99_ms:
                if p99_ms > p.latency_p99_ms:
                    if self._latency_since is None:
                        self._latency_since = now_ms
                    if now_ms - self._latency_since >= p.latency_sustain_s * 1000:
                        return self._open(now_ms, "latency_threshold_exceeded", {"latency_p99_ms": int(p99_ms), "latency_threshold_ms": p.latency_p99_ms})
                else:
                    self._latency_since = None
            return None
        if self.state == HALF_OPEN and p.probe_mode == "fraction":
            self._probe_win.append((now_ms, calls, errors))
            while self._probe_win and now_ms - self._probe_win[0][0] >= p.close_window_s * 1000:
                self._probe_win.popleft()
            c = sum(x[1] for x in self._probe_win)
            e = sum(x[2] for x in self._probe_win)
            success_pct = 100.0 * (c - e) / c if c > 0 else 100.0
            if c > 0 and success_pct < p.close_success_pct and now_ms - (self.half_open_at_ms or now_ms) >= p.probe_interval_s * 1000:
                return self._reopen(now_ms, "probe_traffic_failing")
            if self.half_open_at_ms is not None and now_ms - self.half_open_at_ms >= p.close_window_s * 1000 and success_pct >= p.close_success_pct:
                return self._close(now_ms, "probe_traffic_healthy")
        return None

    def tick(self, now_ms: int, probe_ok: bool) -> Transition | None:
        """Advance timers: end an override, move OPEN -> HALF_OPEN, send a single-mode probe.

        ``probe_ok`` says whether a probe sent now would succeed (the dependency's real health).
        """
        p = self.policy
        if self.override_state is not None:
            if self.override_until_ms is not None and now_ms >= self.override_until_ms:
                prev = self.state
                self.override_state = None
                self.override_until_ms = None
                self._reset_counters()
                return Transition(now_ms, prev, self.state, "override_expired")
            return None
        if self.state == OPEN and now_ms >= self.next_probe_ms:
            if p.probe_mode == "single":
                if probe_ok:
                    self.state = HALF_OPEN
                    self.half_open_at_ms = now_ms
                    self.probe_successes = 1
                    self.next_probe_ms = now_ms + p.probe_interval_s * 1000
                    return Transition(now_ms, OPEN, HALF_OPEN, "attempting_probe")
                self.next_probe_ms = now_ms + p.probe_interval_s * 1000
                return None
            self.state = HALF_OPEN
            self.half_open_at_ms = now_ms
            self._probe_win.clear()
            return Transition(now_ms, OPEN, HALF_OPEN, "attempting_probe")
        if self.state == HALF_OPEN and p.probe_mode == "single" and now_ms >= self.next_probe_ms:
            if not probe_ok:
                return self._reopen(now_ms, "probe_failed")
            self.probe_successes += 1
            self.next_probe_ms = now_ms + p.probe_interval_s * 1000
            if self.probe_successes >= p.close_after_successes:
                return self._close(now_ms, "probe_successes_reached")
        return None

    # ------------------------------------------------------------------ manual control
    def force(self, now_ms: int, state: int, until_ms: int | None = None, reason: str = "manual") -> Transition:
        """Hold the breaker in ``state`` (manual open/close/override) until ``until_ms`` or release."""
        prev = self.state
        self.state = state
        self.override_state = state
        self.override_until_ms = until_ms
        if state == OPEN:
            self.opened_at_ms = now_ms
            self.open_count += 1
            self.next_probe_ms = now_ms + self.policy.probe_interval_s * 1000
        return Transition(now_ms, prev, state, reason)

    def reset(self, now_ms: int, reason: str = "manual_reset") -> Transition:
        """Release any override and return to CLOSED with clean counters."""
        prev = self.state
        self.override_state = None
        self.override_until_ms = None
        self.state = CLOSED
        self._reset_counters()
        return Transition(now_ms, prev, CLOSED, reason)

    # ------------------------------------------------------------------ internals
    def _reset_counters(self) -> None:
        self.consecutive_errors = 0
        self._win.clear()
        self._win_calls = 0.0
        self._win_errors = 0.0
        self._latency_since = None
        self.probe_successes = 0
        self._probe_win.clear()

    def _open(self, now_ms: int, reason: str, evidence: dict[str, int]) -> Transition:
        prev = self.state
        self.state = OPEN
        self.opened_at_ms = now_ms
        self.open_count += 1
        self.next_probe_ms = now_ms + self.policy.probe_interval_s * 1000
        self.last_trip = dict(evidence, window_error_rate_bp=int(self.window_error_pct() * 100))
        self._reset_counters()
        return Transition(now_ms, prev, OPEN, reason)

    def _reopen(self, now_ms: int, reason: str) -> Transition:
        self.state = OPEN
        self.probe_successes = 0
        self.half_open_at_ms = None
        self.next_probe_ms = now_ms + self.policy.probe_interval_s * 1000
        return Transition(now_ms, HALF_OPEN, OPEN, reason)

    def _close(self, now_ms: int, reason: str) -> Transition:
        prev = self.state
        self.state = CLOSED
        self.half_open_at_ms = None
        self._reset_counters()
        return Transition(now_ms, prev, CLOSED, reason)
