"""Synthetic incident event streams (seeded) for tests, benchmarks and fault drills of the ledger.

Each incident is a plausible life: detection, one or two mitigations, recovery started, and
recovery verified (with ``recovered_at_ms``), with integer evidence as the engine writes it.
"""
from __future__ import annotations

import random
import uuid
from typing import Iterator

from engine.events import DETECTED, MITIGATION_APPLIED, RECOVERY_STARTED, RECOVERY_VERIFIED, IncidentEvent

from .ids import URN

INCIDENT_TYPES = ("queue_backlog_overflow", "circuit_breaker_opened", "latency_spike", "error_rate_spike", "region_failover")
SERVICES = ("governor", "action-handler", "app", "upstream")
REGIONS = ("us-central1", "us-west1")


def seeded_uuid(rng: random.Random) -> str:
    """A UUID4 drawn from ``rng`` (deterministic ids for reproducible runs)."""
    return URN + str(uuid.UUID(int=rng.getrandbits(128), version=4))


def incident_events(rng: random.Random, start_ms: int, resolve: bool = True) -> list[IncidentEvent]:
    """The events of one incident starting at ``start_ms``."""
    iid = seeded_uuid(rng)
    itype = rng.choice(INCIDENT_TYPES)
    service, region = rng.choice(SERVICES), rng.choice(REGIONS)
    sev = rng.choice(("Sev1", "Sev2", "Sev3"))
    t = start_ms
    seq = 0
    out: list[IncidentEvent] = []

    def ev(kind: str, dt_ms: int, actor: str, summary: str, data: dict) -> None:
        nonlocal t, seq
        t += dt_ms
        out.append(IncidentEvent(iid, seq, kind, t, t + 3, itype, sev, service, region, actor, "queue.depth", summary, data))
        seq += 1

    depth = rng.randint(1001, 5000)
    ev(DETECTED, 0, "engine", f"{itype} on {service}", {"queue_depth": depth, "queue_depth_threshold": 1000, "sustain_ms": 60_000})
    for _ in range(rng.randint(1, 2)):
        before = rng.choice((10, 20, 30))
        ev(
            MITIGATION_APPLIED,
            rng.randint(1_000, 20_000),
            "runbook:queue_backlog_overflow@1",
            "scaled concurrency",
            {"actions": [{"action": "scale_concurrency", "from": before, "to": before * 2, "duration_ms": rng.randint(100, 900)}], "queue_depth": depth},
        )
    ev(RECOVERY_STARTED, rng.randint(10_000, 60_000), "engine", "depth falling", {"queue_depth": rng.randint(300, 999)})
    if resolve:
        recovered = t
        ev(RECOVERY_VERIFIED, 120_000, "engine", "recovery held for 2 min", {"recovered_at_ms": recovered, "hold_ms": 120_000, "queue_depth": rng.randint(10, 499)})
    return out


def event_stream(seed: int, start_ms: int, incidents: int) -> Iterator[IncidentEvent]:
    """Events of ``incidents`` consecutive incidents, in time order."""
    rng = random.Random(seed)
    t = start_ms
    for _ in range(incidents):
        evs = incident_events(rng, t)
        yield from evs
        t = evs[-1].observed_at_ms + rng.randint(1_000, 600_000)
