"""A real Prometheus scraping `ggen fleet serve` every second, watched by `ggen watch --source
prometheus`: injected latency and error-rate spikes are detected with the simulator's own type and
severity, the runbooks act on the served fleet through the webhook actuator (POST /actions), the
incidents resolve on observed recovery, and the receipts verify. Real time, loopback only."""
from __future__ import annotations

import json

import pytest

from sources_support import FleetServe, Prometheus, Watch, ggen, scaled_policy, wait_for, write_config

pytestmark = pytest.mark.system


def _config(policy, prom_url: str, fleet_url: str) -> str:
    return f"""
[source]
kind = "prometheus"
runbooks = "{policy}"

[sources.prometheus]
url = "{prom_url}"
interval_ms = 1000
stale_after_ms = 2500
window = "5s"

[actuators.fleet]
type = "webhook"
enabled = true
url = "{fleet_url}/actions"
timeout_ms = 2000
retries = 1
"""


def test_watch_detects_spikes_acts_through_the_webhook_and_receipts_verify(tmp_path):
    policy = scaled_policy(tmp_path / "policy")
    fleet = FleetServe(tmp_path, policy_dir=policy).start()
    prom = Prometheus(tmp_path, [f"127.0.0.1:{fleet.port}"]).start()
    data = tmp_path / "data"
    write_config(data, _config(policy, prom.url, fleet.url))
    watch = Watch(tmp_path, data, "--source", "prometheus").start()
    try:
        watch.wait_notice("source.fresh", 30)

        # histogram_quantile over the exposed buckets reads the simulator's own P99 closely.
        state = fleet.state()["services"]
        p99 = {r["metric"]["service"]: 1000 * float(r["value"][1]) for r in prom.query('histogram_quantile(0.99, sum by (le, service) (rate(ggen_request_duration_seconds_bucket[5s])))')}
        for svc in ("api", "app", "action-handler"):
            assert p99[svc] == pytest.approx(state[svc]["p99_ms"], rel=0.2), (svc, p99[svc], state[svc]["p99_ms"])

        # Latency: a slow query on the database makes app's P99 ~1.5 s -> Sev2 (P99 > 1000 ms).
        slow = fleet.inject("slow_queries", "database")
        det = watch.wait_event(40, kind="incident.detected", incident_type="latency_spike")
        assert (det["severity"], det["service"]) == ("Sev2", "app")
        assert det["data"]["signal"] == "p99_ms" and det["data"]["value_milli"] > 1_000_000
        assert det["actor"] == "engine" and det["source_signal"] == "service.p99_ms"
        applied = watch.wait_event(10, kind="mitigation.applied", incident_type="latency_spike")
        assert applied["data"]["action"] == "prioritize_requests"
        assert applied["data"]["outcome"]["http_status"] == 200 and applied["data"]["outcome"]["actuator"] == "fleet"
        fleet.clear(slow["id"])
        watch.wait_event(40, kind="recovery.verified", incident_type="latency_spike")

        # Error rate: a bad deploy failing 60 % of app's requests -> Sev1 (error_pct > 50).
        fleet.inject("bad_deploy", "app", error_pct=60.0)
        det = watch.wait_event(40, kind="incident.detected", incident_type="error_rate_spike")
        assert (det["severity"], det["service"]) == ("Sev1", "app")
        assert det["data"]["metrics_at_trigger"]["error_rate_bp"] > 5000
        # The deploy was seen as a revision change, so the runbook rolls it back on the served fleet.
        rollback = wait_for(lambda: [e for e in watch.events(kind="mitigation.applied", incident_type="error_rate_spike") if e["data"]["action"] == "rollback_deploy"], 20, what="rollback_deploy")[0]
        assert rollback["data"]["outcome"]["http_status"] == 200
        assert wait_for(lambda: fleet.state()["services"]["app"]["revision"] == 1, 10, what="revision 1 served")
        watch.wait_event(60, kind="recovery.verified", incident_type="error_rate_spike")
    finally:
        code = watch.stop()
        prom.stop()
        fleet.stop()
    assert code == 0, watch.stderr()
    done = ggen("--data-dir", str(data), "incidents", "verify", "--all")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = ggen("--data-dir", str(data), "incidents", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted((i["incident_type"], i["severity"], i["service"], i["status"]) for i in rows) == [
        ("error_rate_spike", "Sev1", "app", "resolved"),
        ("latency_spike", "Sev2", "app", "resolved"),
    ]
