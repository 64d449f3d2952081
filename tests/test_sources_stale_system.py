"""Prometheus stopped in the middle of a run: the signals go stale, the engine says so, nothing is
taken for healthy (an open incident does not resolve although the real system has recovered),
and when Prometheus returns the signals are fresh again and the incident resolves."""
from __future__ import annotations

import json
import time

import pytest

from sources_support import FleetServe, Prometheus, Watch, ggen, scaled_policy, wait_for, write_config

pytestmark = pytest.mark.system


def test_prometheus_outage_makes_signals_stale_and_never_healthy(tmp_path):
    policy = scaled_policy(tmp_path / "policy")
    fleet = FleetServe(tmp_path, policy_dir=policy).start()
    prom = Prometheus(tmp_path, [f"127.0.0.1:{fleet.port}"]).start()
    data = tmp_path / "data"
    write_config(data, f"""
[source]
kind = "prometheus"
runbooks = "{policy}"

[sources.prometheus]
url = "{prom.url}"
interval_ms = 1000
timeout_ms = 800
stale_after_ms = 2500
window = "5s"
""")
    watch = Watch(tmp_path, data).start()
    try:
        watch.wait_notice("source.fresh", 30)
        slow = fleet.inject("slow_queries", "database")
        det = watch.wait_event(40, kind="incident.detected", incident_type="latency_spike")
        incident = det["incident_id"]
        # No actuator is configured: the engine is in dry-run, the runbook's actions are planned only.
        planned = watch.wait_event(10, kind="mitigation.planned", incident_id=incident)
        assert planned["data"]["action"] == "prioritize_requests"

        stale_before = len(watch.notices("source.stale"))
        prom.stop()
        stale = watch.wait_notice("source.stale", 15, after=stale_before)
        assert "stale" in stale["text"] and "never as healthy" in stale["text"]
        assert "cannot reach" in stale["reason"] or "queries failed" in stale["reason"]
        # The real system recovers meanwhile; the engine cannot see it and must not call it healthy.
        fleet.clear(slow["id"])
        def health() -> list[dict]:
            r = ggen("--data-dir", str(data), "services", "health", "--json")
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)["services"]

        # The last poll may have half-answered before Prometheus went: within one stale window
        # every signal is stale, and then no service is healthy and no value is known.
        rows = wait_for(lambda: (lambda rs: rs if rs and all(x["p99_ms"] is None for x in rs) else None)(health()), 10, what="every p99 unknown")
        assert not any(r["healthy"] for r in rows), rows
        assert all(r["replicas"] is None and r["revision"] is None and r["config_version"] is None for r in rows), rows
        circ = ggen("--data-dir", str(data), "circuits", "status", "--json")
        assert circ.returncode == 0, circ.stderr
        assert {c["state"] for c in json.loads(circ.stdout)["circuits"]} == {"UNKNOWN"}  # not CLOSED
        time.sleep(8)  # well past the 3 s recovery hold
        assert not watch.events(kind="recovery.started", incident_id=incident)
        assert not watch.events(kind="recovery.verified", incident_id=incident)

        restarted = Prometheus(tmp_path, [f"127.0.0.1:{fleet.port}"], port=prom.port).start()
        try:
            fresh_before = len(watch.notices("source.fresh"))
            again = watch.wait_notice("source.fresh", 30, after=fresh_before)
            assert "fresh again after" in again["text"]
            done = watch.wait_event(40, kind="recovery.verified", incident_id=incident)
            assert done["data"]["final_metrics"]["p99_ms"] < 300
        finally:
            restarted.stop()
    finally:
        code = watch.stop()
        prom.stop()
        fleet.stop()
    assert code == 0, watch.stderr()
    verified = ggen("--data-dir", str(data), "incidents", "verify", "--all")
    assert verified.returncode == 0, verified.stdout + verified.stderr
