"""A real Prometheus evaluates alerting rules over `ggen fleet serve` and sends to a real
Alertmanager, whose webhook reaches `ggen watch --source alertmanager`: the incident opens on the
firing alert (type and severity from the mapping file), resolves when the alert resolves, and an
alert the mapping cannot place is refused out loud. Real time, loopback only."""
from __future__ import annotations

import json

import pytest

from sources_support import Alertmanager, FleetServe, Prometheus, Watch, free_port, ggen, http_json, scaled_policy, write_config

pytestmark = pytest.mark.system

RULES = """
groups:
  - name: ggen
    rules:
      - alert: GgenHighErrorRate
        expr: 100 * sum by (service) (rate(ggen_requests_total{service="app",code=~"5.."}[5s])) / sum by (service) (rate(ggen_requests_total{service="app",code!="429"}[5s])) > 5
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: "error rate of {{ $labels.service }} is {{ $value }} %"
      - alert: DiskAlmostFull
        expr: vector(1)
        labels:
          severity: warning
"""


def test_alertmanager_webhook_opens_and_resolves_incidents(tmp_path):
    policy = scaled_policy(tmp_path / "policy")
    listen_port = free_port()
    fleet = FleetServe(tmp_path, policy_dir=policy).start()
    am = Alertmanager(tmp_path, f"http://127.0.0.1:{listen_port}/alerts").start()
    data = tmp_path / "data"
    write_config(data, f"""
[source]
runbooks = "{policy}"

[sources.alertmanager]
path = "/alerts"
""")
    watch = Watch(tmp_path, data, "--source", "alertmanager", "--listen", f"127.0.0.1:{listen_port}").start()
    prom = Prometheus(tmp_path, [f"127.0.0.1:{fleet.port}"], rules=RULES, alertmanager=am.address).start()
    try:
        # The always-firing alert no rule maps is refused, and said so.
        refused = watch.wait_notice("alert.rejected", 30)
        assert "DiskAlmostFull" in refused["text"] and "no mapping rule" in refused["reason"]

        fleet.inject("bad_deploy", "app", error_pct=40.0)
        det = watch.wait_event(40, kind="incident.detected")
        assert (det["incident_type"], det["severity"], det["service"]) == ("error_rate_spike", "Sev1", "app")
        assert det["actor"] == "source:alertmanager" and det["source_signal"] == "alertmanager.alert"
        assert det["data"]["alertname"] == "GgenHighErrorRate" and det["data"]["labels"]["severity"] == "critical"
        assert det["data"]["annotations"]["summary"].startswith("error rate of app is ")
        assert det["observed_at_ms"] <= det["recorded_at_ms"]  # the alert's startsAt, then when it reached us
        incident = det["incident_id"]

        # A person rolls the deploy back on the served fleet; the alert resolves, so does the incident.
        code, answer = http_json(fleet.url + "/actions", {"action": "rollback_deploy", "target": "app", "actor": "person:test"})
        assert code == 200 and answer["ok"], answer
        done = watch.wait_event(40, kind="recovery.verified", incident_id=incident)
        assert done["data"]["resolved_by"] == "alert_resolved" and done["data"]["fingerprint"] == det["data"]["fingerprint"]
        assert done["actor"] == "source:alertmanager"
        # Exactly one incident for the alert, however many notifications Alertmanager sent.
        assert len(watch.events(kind="incident.detected")) == 1
    finally:
        code = watch.stop()
        prom.stop()
        am.stop()
        fleet.stop()
    assert code == 0, watch.stderr()
    verified = ggen("--data-dir", str(data), "incidents", "verify", "--all")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    rows = json.loads(ggen("--data-dir", str(data), "incidents", "list", "--json").stdout)
    assert [(r["incident_type"], r["severity"], r["status"]) for r in rows] == [("error_rate_spike", "Sev1", "resolved")]
