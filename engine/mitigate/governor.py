"""The safety governor: every action, automatic or manual, asks it first.

It enforces a remediation budget per incident and per service (default 5 actions per 10 minutes),
a blast-radius limit (no action touches more than one region at once, except a failover), a
global kill switch that stops automation (people can still act), and dry-run, in which actions are
planned, recorded and shown but not applied.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.policy.models import GovernorPolicy


REGION_WIDE_ACTIONS = frozenset({"failover_region", "failback_region"})


@dataclass(frozen=True)
class Verdict:
    """The governor's answer. ``allowed`` False means refused; ``dry_run`` means plan only."""

    allowed: bool
    dry_run: bool
    reason: str


class SafetyGovernor:
    """Budget, blast radius, kill switch and dry-run for one engine."""

    def __init__(self, policy: GovernorPolicy) -> None:
        self.policy = policy
        self.kill_switch = policy.kill_switch
        self.dry_run = policy.dry_run
        self._by_incident: dict[str, deque[int]] = {}
        self._by_service: dict[str, deque[int]] = {}

    def _recent(self, book: dict[str, deque[int]], key: str, now_ms: int) -> deque[int]:
        d = book.setdefault(key, deque())
        limit = now_ms - self.policy.budget_window_s * 1000
        while d and d[0] <= limit:
            d.popleft()
        return d

    def budget_left(self, now_ms: int, incident_id: str | None, service: str | None) -> int:
        left = self.policy.budget_actions
        if incident_id:
            left = min(left, self.policy.budget_actions - len(self._recent(self._by_incident, incident_id, now_ms)))
        if service:
            left = min(left, self.policy.budget_actions - len(self._recent(self._by_service, service, now_ms)))
        return left

    def check(self, now_ms: int, action: str, *, automated: bool, incident_id: str | None, service: str | None, regions: tuple[str, ...] = ()) -> Verdict:
        """May ``action`` run now? Does not count it; call :meth:`record` once it has run."""
        if automated and self.kill_switch:
            return Verdict(False, self.dry_run, "kill switch is on: automation is stopped")
        if len(set(regions)) > self.policy.max_regions_per_action and action not in REGION_WIDE_ACTIONS:
            return Verdict(False, self.dry_run, f"blast radius: {action} would touch {len(set(regions))} regions (limit {self.policy.max_regions_per_action})")
        if self.budget_left(now_ms, incident_id, service) <= 0:
            who = f"incident {incident_id}" if incident_id and len(self._recent(self._by_incident, incident_id, now_ms)) >= self.policy.budget_actions else f"service {service}"
            return Verdict(False, self.dry_run, f"remediation budget spent for {who}: {self.policy.budget_actions} actions per {self.policy.budget_window_s // 60} min")
        if self.dry_run:
            return Verdict(True, True, "dry-run: planned, not applied")
        return Verdict(True, False, "allowed")

    def record(self, now_ms: int, incident_id: str | None, service: str | None) -> None:
        if incident_id:
            self._recent(self._by_incident, incident_id, now_ms).append(now_ms)
        if service:
            self._recent(self._by_service, service, now_ms).append(now_ms)

    def status(self, now_ms: int) -> dict[str, object]:
        return {
            "kill_switch": self.kill_switch,
            "dry_run": self.dry_run,
            "budget_actions": self.policy.budget_actions,
            "budget_window_s": self.policy.budget_window_s,
            "spent_by_service": {k: len(self._recent(self._by_service, k, now_ms)) for k in list(self._by_service)},
            "spent_by_incident": {k: len(self._recent(self._by_incident, k, now_ms)) for k in list(self._by_incident)},
        }
