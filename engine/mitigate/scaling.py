"""Scaling arithmetic (11-automated-mitigation, decisions.md).

new concurrency = current x (depth / divisor), rounded UP to a multiple of ``round_to``, at most
``max_step_factor`` x current per step, clamped to [min, max] where max is the lower of the
scaler's maximum and the tenant's quota. Worked example from the documents: 20 x (700 / 300) =
46.7 -> 50.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.policy.models import ScalerPolicy


@dataclass(frozen=True)
class ScalingDecision:
    """What one scaling step would do."""

    current: int
    proposed: int
    limit: int
    factor_ppm: int
    exhausted: bool  # already at the limit: nothing more scaling can give

    @property
    def changes(self) -> bool:
        return self.proposed != self.current


def next_concurrency(current: int, depth: float, policy: ScalerPolicy, limit: int | None = None) -> ScalingDecision:
    """The concurrency the scaler would set for a backlog of ``depth`` messages."""
    cap = min(policy.max_concurrency, limit) if limit is not None else policy.max_concurrency
    factor = depth / policy.depth_divisor
    raw = current * factor
    rounded = int(math.ceil(raw / policy.round_to - 1e-9)) * policy.round_to
    stepped = min(rounded, current * policy.max_step_factor)
    proposed = max(policy.min_concurrency, min(cap, stepped))
    # Never scale down while a backlog is being handled.
    proposed = max(proposed, min(current, cap))
    exhausted = current >= cap
    return ScalingDecision(current, proposed, cap, int(round(factor * 1_000_000)), exhausted)
