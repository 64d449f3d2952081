"""Sample incident data sets: play a scenario and keep everything an investigator would collect.

`ggen sample-logs --scenario NAME --out DIR` writes the fleet's logs, traces and metric series for
the whole run (engine/telemetry.py), and a manifest.json with the scenario, the faults (what, where,
when), the root-cause service, and the incidents with their figures. With a data directory the
run's receipts go to that directory's signed ledger too, so timelines can merge them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from engine.clock import iso_utc
from engine.core import random_id
from engine.drill.runner import judge, start_engine
from engine.drill.scenario import Scenario
from engine.fleet.faults import FAULT_KINDS
from engine.telemetry import TelemetryRecorder

# Where each fault starts failing: the service a correct root-cause analysis must name first.
ROOT_CAUSE_SERVICE = {
    "traffic_surge": "governor",
    "slow_consumer": "governor",
    "quota_exhaustion": "governor",
    "dependency_outage": None,  # the target service
    "dependency_timeouts": None,
    "external_outage": None,
    "slow_queries": None,
    "cpu_saturation": None,
    "memory_pressure": None,
    "bad_deploy": None,
    "bad_config": None,
    "schema_change": None,
    "region_outage": "api",  # the edge is where a dead region first shows
    "flapping_health": "api",
    "traffic_spike": None,
}


def root_cause_service(kind: str, target: str) -> str:
    return ROOT_CAUSE_SERVICE.get(kind) or target


def write_sample_set(
    sc: Scenario, out_dir: Path, *, seed: int = 1, data_dir: Any = None, info_every_s: int = 5, max_errors_per_s: int = 3, gzip: bool = False
) -> dict[str, Any]:
    """Play ``sc`` with telemetry into ``out_dir``; with ``data_dir`` also sign its receipts there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if data_dir is not None:
        kwargs["ids"] = random_id  # ids must be unique in a ledger that outlives this run
    holder: dict[str, TelemetryRecorder] = {}

    def warm_tick(eng) -> None:
        rec = holder.get("rec")
        if rec is None:
            rec = holder["rec"] = TelemetryRecorder(eng, out_dir, seed=seed, info_every_s=info_every_s, max_errors_per_s=max_errors_per_s, trace_every_s=info_every_s, metric_every_s=max(10, info_every_s), gzip=gzip)
        rec.on_tick()

    engine, play_due = start_engine(sc, seed, on_tick=warm_tick, **kwargs)
    ledger = None
    if data_dir is not None:
        from engine.receipts import KeyStore, Ledger, ReceiptSink

        data_dir.ensure()
        keys = KeyStore.open_or_init(data_dir.keys_dir, now_ms=engine.now_ms)
        ledger = Ledger.open(data_dir.ledger_path, keys)
        engine.subscribe(ReceiptSink(ledger, keys, engine.policy.policy_hashes, engine.clock))
    rec = holder.get("rec") or TelemetryRecorder(engine, out_dir, seed=seed, info_every_s=info_every_s, max_errors_per_s=max_errors_per_s, trace_every_s=info_every_s, metric_every_s=max(10, info_every_s), gzip=gzip)
    t0 = engine.now_ms
    start = engine.now_ms - sc.scenario.warmup_s * 1000
    end = t0 + sc.scenario.run_s * 1000
    faults: list[dict[str, Any]] = []
    seen = 0
    try:
        play_due()
        while engine.now_ms < end:
            engine.clock.sleep_until(engine.now_ms + engine.tick_ms)  # type: ignore[attr-defined]
            engine.step()
            play_due()
            rec.on_tick()
            if len(engine.fleet.faults) != seen:
                seen = len(engine.fleet.faults)
        for f in engine.fleet.faults:
            faults.append(
                {
                    "kind": f.kind,
                    "target": f.target,
                    "incident_type": FAULT_KINDS[f.kind][0],
                    "injected_at": iso_utc(f.start_ms),
                    "ended_at": iso_utc(f.end_ms) if f.end_ms else None,
                    "mitigated_at": iso_utc(f.neutralized_ms) if f.neutralized_ms else None,
                    "root_cause_service": root_cause_service(f.kind, f.target),
                    "params": f.params,
                }
            )
    finally:
        lines = rec.close()
        if ledger is not None:
            ledger.close()
    result = judge(sc, engine, seed, t0)
    manifest = {
        "scenario": sc.name,
        "title": sc.scenario.title,
        "description": sc.scenario.description,
        "seed": seed,
        "window": {"from": iso_utc(start), "to": iso_utc(engine.now_ms)},
        "faults": faults,
        "incidents": [
            {
                "id": i.id,
                "type": i.type,
                "service": i.service,
                "entity": i.entity,
                "severity": i.max_severity,
                "first_anomaly_at": iso_utc(i.first_anomaly_ms),
                "detected_at": iso_utc(i.detected_at_ms),
                "first_action_at": iso_utc(i.first_action_at_ms) if i.first_action_at_ms else None,
                "recovered_at": iso_utc(i.recovered_at_ms) if i.recovered_at_ms else None,
                "resolved_at": iso_utc(i.resolved_at_ms) if i.resolved_at_ms else None,
                "escalated": i.escalated,
                "mttr_ms": i.mttr_ms,
                "events": len(i.events),
            }
            for i in sorted(engine.incidents.values(), key=lambda x: x.detected_at_ms)
        ],
        "drill_passed": result.passed,
        "files": {name: {"lines": n} for name, n in sorted(lines.items())},
        "spans": rec.span_count,
        "receipts_in": str(data_dir.ledger_path) if data_dir is not None else None,
    }
    (out_dir / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest
