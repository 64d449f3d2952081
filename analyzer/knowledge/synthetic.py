"""Generated knowledge-base entries: valid, varied and deterministic, for benchmarks and tests.

They are built from the fleet's vocabulary (services, metrics, status codes, root causes) with a
seeded random generator, so 10,000 of them exercise the index the way a large real knowledge
base would, and a test can write one entry with exactly the fields it wants to check.
"""
from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .entry import CAUSES, INCIDENT_TYPES, PATTERNS, render_entry

SERVICES = ("api", "app", "upstream", "governor", "action-handler", "database", "external-api")
REGIONS = ("us-central1", "us-west1")
METRICS = (
    "custom.governor/queue_depth",
    "request_latency_p99_ms",
    "custom.governor/error_rate_percent",
    "custom.governor/downstream_latency_p99",
    "pubsub.googleapis.com/subscription/num_undelivered_messages",
    "response_size_bytes",
    "traffic_by_region",
    "custom.governor/errors_per_minute",
)
CODES = ("500", "502", "503", "504", "429", "400", "422")
TYPE_WORDS = {
    "queue_backlog_overflow": ("queue depth", "backlog", "oldest unacked message", "concurrency"),
    "circuit_breaker_opened": ("breaker OPEN", "half-open probes", "fast 503", "cached value"),
    "latency_spike": ("P99 latency", "slow requests", "tail latency", "spike factor"),
    "error_rate_spike": ("error rate", "5xx responses", "4xx responses", "errors per minute"),
    "region_failover": ("health checks failed", "DNS switch", "standby region", "replication lag"),
}
VERBS = ("rose to", "peaked at", "climbed to", "jumped to", "held at")
FIXES = ("rolled back the release", "opened the breaker", "raised concurrency", "reset the connection pool",
         "disabled the feature flag", "reverted the config", "created the index", "failed over to us-west1",
         "scaled replicas", "rate-limited the tenant")


def synthetic_entry(
    i: int, rng: random.Random | None = None, *, sections: dict[str, str] | None = None, **overrides: Any
) -> tuple[str, str]:
    """(file name, Markdown) of generated entry number ``i``; ``overrides`` replace front-matter
    fields and ``sections`` replace Markdown sections."""
    r = rng or random.Random(i)
    types = [r.choice(INCIDENT_TYPES)]
    if r.random() < 0.2:
        other = r.choice(INCIDENT_TYPES)
        if other not in types:
            types.append(other)
    causes = r.sample(CAUSES, k=r.choice((1, 1, 2)))
    services = r.sample(SERVICES, k=r.choice((1, 2, 3)))
    day = date(2025, 1, 1) + timedelta(days=r.randrange(0, 700))
    sev = r.choice(("Sev1", "Sev2", "Sev2", "Sev3", "Sev4"))
    duration = r.randrange(3, 120)
    mttr = r.randrange(1, duration + 1)
    total = r.randrange(500, 3000)
    affected = r.randrange(0, total // 2)
    metric = r.choice(METRICS)
    code = r.choice(CODES)
    value = r.randrange(500, 20000)
    acct = f"acct-{r.randrange(1000, 9999)}"
    words = TYPE_WORDS[types[0]]
    cause_text = causes[0].replace("_", " ")
    fix = r.choice(FIXES)
    meta: dict[str, Any] = {
        "title": f"{types[0].replace('_', ' ').capitalize()} - {cause_text.capitalize()} on {services[0]} (case {i})",
        "incident_id": "urn:uuid:" + str(uuid.UUID(int=r.getrandbits(128), version=4)),
        "date": day,
        "severity": sev,
        "duration_min": duration,
        "mttr_min": mttr,
        "customers_affected": f"{affected:,} / {total:,} ({100.0 * affected / total:.1f}%)",
        "root_cause": f"A {cause_text} in {services[0]} pushed {metric} past its threshold.",
        "solution": f"The on-call {fix} and the service recovered in {mttr} minutes.",
        "incident_types": types,
        "causes": causes,
        "services": services,
        "regions": [r.choice(REGIONS)],
        "accounts": [acct],
        "tags": [f"case-{i}", code],
        "outcome": r.choice(("resolved", "resolved", "escalated")),
        "kb_assisted": r.random() < 0.2,
        "mitigations": [
            {"pattern": r.choice(PATTERNS), "outcome": r.choice(("worked", "partial", "failed")), "note": f"note {i}"}
        ],
        "related_incidents": [],
        "links": {"ticket": f"OPS-{10000 + i}"},
    }
    meta.update(overrides)
    sections_override = sections or {}
    sections = {
        "Symptoms": (
            f"- **Customers saw:** {code} responses and slow pages from {services[0]} for {acct}.\n"
            f"- **Monitoring detected:** `{metric}` {r.choice(VERBS)} {value:,}; {r.choice(words)} and {r.choice(words)}.\n"
            f"- **Key metrics:** P99 {r.randrange(200, 9000):,} ms, error rate {r.randrange(1, 60)}%, CPU {r.randrange(20, 99)}%."
        ),
        "Root Cause": f"A {cause_text} on {services[0]} in {meta['regions'][0]}. Not caught earlier because the alert on `{metric}` was missing.",
        "Contributing Factors": f"- {r.choice(words).capitalize()} was not on a dashboard.\n- {services[-1]} had no breaker.",
        "Timeline": (
            "| Time | Event | Action |\n|---|---|---|\n"
            f"| 10:0{r.randrange(0, 10)} | Alert on {metric} | page |\n| 10:{r.randrange(10, 60)} | {fix} | recovery |"
        ),
        "Resolution": f"1. **T+{mttr // 2} min:** the on-call {fix}.\n2. **T+{mttr} min:** recovered; verified with `ggen incidents list --since 24h`.",
        "Prevention": (
            f"### Short-term (same day)\n\n- [x] Alert on {metric}\n\n"
            f"### Medium-term (within 1 month)\n\n- [ ] Load test {services[0]}\n\n"
            f"### Long-term (within 3 months)\n\n- [ ] Remove the {cause_text} risk"
        ),
        "Lessons Learned": f"- Went well: {fix}.\n- Can improve: watch {r.choice(words)}.",
    }
    sections.update(sections_override)
    slug = f"synthetic-{meta['incident_types'][0].replace('_', '-')}-{i}"
    name = f"incident-{slug}-{meta['date'].isoformat()}.md"
    return name, render_entry(meta, sections)


def write_synthetic(directory: Path, count: int, seed: int = 7, start: int = 0) -> list[Path]:
    """Write ``count`` generated entries into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(start, start + count):
        name, text = synthetic_entry(i, random.Random(rng.getrandbits(64)))
        p = directory / name
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
