"""`ggen fleet serve`: the exposition parses and agrees with the simulator, the HTTP API injects,
lists and clears faults and applies actions (what the webhook actuator sends), bad requests get
clear errors, and the command line starts, answers and stops."""
from __future__ import annotations

import signal
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.actuators import WebhookActuator
from engine.mitigate.actuator import Action
from engine.sources.target import FleetServer, FleetTarget, lognormal_cdf
from sources_support import child_env, free_port, ggen_argv, http_json, wait_for


@pytest.fixture
def served():
    target = FleetTarget(seed=3, speed=50.0)
    server = FleetServer(target, "127.0.0.1", 0).start()
    target.start()
    yield target, server
    target.stop()
    server.stop()


def families(raw: bytes) -> dict:
    return {f.name: f for f in text_string_to_metric_families(raw.decode())}


def test_exposition_parses_and_matches_the_simulator(served):
    target, server = served
    wait_for(lambda: target.ticks >= 60, 10, what="60 ticks")
    import urllib.request

    raw = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(server.url + "/metrics", timeout=5).read()
    fam = families(raw)
    for name in ("ggen_requests", "ggen_request_duration_seconds", "ggen_queue_depth", "ggen_queue_oldest_unacked_age_seconds",
                 "ggen_queue_consumer_concurrency", "ggen_circuit_breaker_state", "ggen_region_up", "ggen_region_health_check_consecutive_failures",
                 "ggen_service_in_flight_requests", "ggen_edge_requests", "ggen_replication_lag_seconds"):
        assert name in fam, name
    assert fam["ggen_requests"].type == "counter" and fam["ggen_request_duration_seconds"].type == "histogram"
    # Buckets are cumulative, end with +Inf equal to _count, and _count matches the request counter.
    buckets = [s for s in fam["ggen_request_duration_seconds"].samples if s.name.endswith("_bucket") and s.labels["service"] == "app"]
    values = [s.value for s in buckets]
    assert values == sorted(values) and buckets[-1].labels["le"] == "+Inf"
    count = next(s.value for s in fam["ggen_request_duration_seconds"].samples if s.name.endswith("_count") and s.labels["service"] == "app")
    reqs = sum(s.value for s in fam["ggen_requests"].samples if s.labels["service"] == "app" and s.name.endswith("_total"))
    assert values[-1] == pytest.approx(count) and count == pytest.approx(reqs, rel=1e-6)
    # Counters are per simulated second scaled to wall time: about rps x simulated seconds / speed.
    sim_s = target.ticks * target.tick_ms / 1000
    assert reqs == pytest.approx(target.fleet.services["app"].served_rps * sim_s / target.speed, rel=0.15)
    states = {s.labels["circuit"]: s.value for s in fam["ggen_circuit_breaker_state"].samples}
    assert set(states) == set(target.fleet.breakers) and set(states.values()) == {0.0}


def test_latency_buckets_resolve_the_runbook_thresholds():
    # The bucket bounds bracket 300, 500, 1000 and 5000 ms closely enough that linear interpolation
    # (what histogram_quantile does) of a log-normal's P99 lands within 5 %.
    target = FleetTarget()
    bounds = target.bounds_ms
    for p99 in (250.0, 480.0, 1100.0, 1500.0, 5400.0, 9000.0):
        p50 = p99 / 3.0
        cdf = [lognormal_cdf(b, p50, p99) for b in bounds]
        i = next(k for k, c in enumerate(cdf) if c >= 0.99)
        lo, hi = (bounds[i - 1], cdf[i - 1]) if i else (0.0, 0.0)
        est = lo + (bounds[i] - lo) * (0.99 - hi) / (cdf[i] - hi)
        assert est == pytest.approx(p99, rel=0.05), (p99, est)


def test_fault_and_action_api(served):
    target, server = served
    code, body = http_json(server.url + "/faults")
    assert code == 200 and "bad_deploy" in body["kinds"] and body["active"] == []
    code, body = http_json(server.url + "/faults", {"kind": "bad_deploy", "target": "app", "params": {"error_pct": 30}})
    assert code == 201 and body["fault"]["kind"] == "bad_deploy"
    fid = body["fault"]["id"]
    wait_for(lambda: target.fleet.services["app"].error_pct > 25, 5, what="errors")
    assert http_json(server.url + "/state")[1]["services"]["app"]["revision"] == 2
    # What the webhook actuator sends, applied by the simulator actuator.
    hook = WebhookActuator("fleet", server.url + "/actions", enabled=True)
    res = hook.apply(Action("rollback_deploy", "app", {}, ("us-central1",), "runbook:error_rate_spike@1", None, "test"), 0)
    assert res.ok and "revision 2 -> 1" in res.detail and res.outcome["http_status"] == 200
    assert target.fleet.services["app"].revision == 1
    log = http_json(server.url + "/actions")[1]["actions"]
    assert [(a["action"], a["actor"], a["ok"]) for a in log] == [("rollback_deploy", "runbook:error_rate_spike@1", True)]
    assert http_json(server.url + f"/faults/{fid}", method="DELETE")[0] == 200
    assert http_json(server.url + "/faults")[1]["active"] == []


@pytest.mark.parametrize(
    ("path", "body", "code", "says"),
    [
        ("/faults", {"kind": "meteor"}, 400, "unknown fault kind"),
        ("/faults", {"kind": "bad_deploy", "target": "nowhere"}, 400, "unknown service"),
        ("/faults", {"kind": "bad_deploy", "params": {"colour": 1}}, 400, "no parameter"),
        ("/actions", {"action": "teleport", "target": "app"}, 400, "unknown action"),
        ("/actions", {"action": "throttle"}, 400, "needs a name"),
        ("/nope", {}, 404, "no such endpoint"),
    ],
)
def test_bad_requests_get_clear_errors(served, path, body, code, says):
    _, server = served
    got, answer = http_json(server.url + path, body)
    assert got == code and says in answer["error"]


def test_oversized_and_non_json_bodies(served):
    _, server = served
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for data, code in ((b"x" * 70_000, 413), (b"{not json", 400), (b"[1]", 400)):
        req = urllib.request.Request(server.url + "/faults", data=data, method="POST")
        with pytest.raises(urllib.error.HTTPError) as exc:
            opener.open(req, timeout=5)
        assert exc.value.code == code
    assert http_json(server.url + "/faults/F99", method="DELETE")[0] == 404


def test_scenario_plays_its_faults_on_the_served_clock():
    from engine.drill.scenario import load_scenario

    target = FleetTarget(speed=1.0, scenario=load_scenario("errors-bad-deploy"))
    first = target.scenario.faults[0]
    for _ in range(int(first.at_s) + 2):
        target.step()
    assert [f.kind for f in target.fleet.faults] == [first.kind]
    assert any(e["kind"] == "fault.injected" and "scenario:errors-bad-deploy" in e["text"] for e in target.events)


def test_the_command_line_serves_and_stops_on_sigterm(tmp_path):
    port = free_port()
    p = subprocess.Popen(ggen_argv("fleet", "serve", "--port", str(port), "--speed", "5"), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=child_env(), start_new_session=True)
    try:
        wait_for(lambda: http_json(f"http://127.0.0.1:{port}/healthz", timeout=1)[1]["ok"], 20, what="fleet serve")
        busy = subprocess.run(ggen_argv("fleet", "serve", "--port", str(port)), capture_output=True, text=True, env=child_env(), timeout=30)
        assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
        bad = subprocess.run(ggen_argv("fleet", "serve", "--scenario", "no-such-scenario"), capture_output=True, text=True, env=child_env(), timeout=30)
        assert bad.returncode == 2 and bad.stderr.startswith("ggen: ") and "no-such-scenario" in bad.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=15)
    assert p.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in err.decode()
