"""The webhook actuator against a real local HTTP server: the action document is POSTed, a JSON
answer becomes the result, 5xx/408/429, dropped connections and timeouts are retried with
backoff, other 4xx are final, garbage answers fail, and through the engine a failing webhook
escalates with its reason in the signed receipt."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.actuators import ActuatorRouter, WebhookActuator
from engine.clock import VirtualClock
from engine.core import Engine
from engine.mitigate.actuator import Action
from sources_support import free_port

ACTION = Action("throttle", "app", {"max_per_second": 100}, ("us-central1",), "runbook:error_rate_spike@1", "urn:uuid:00000000-0000-4000-8000-000000000001", "test")


class Receiver:
    """Answers POSTs from a plan: (status, body) pairs, "hang" (sleep past the timeout) or "close"."""

    def __init__(self, plan: list[Any], default: Any = (200, b"")) -> None:
        self.plan = list(plan)
        self.default = default
        self.got: list[tuple[dict[str, str], bytes]] = []
        rx = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rx.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                answer = rx.plan.pop(0) if rx.plan else rx.default
                if answer == "hang":
                    time.sleep(1.0)
                    answer = (200, b"")
                if answer == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, raw = answer
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (its timeout): that is the point of "hang"

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = "http://127.0.0.1:%d/actions" % self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(plan: list[Any], default: Any = (200, b"")) -> Receiver:
        made.append(Receiver(plan, default))
        return made[-1]

    yield make
    for r in made:
        r.close()


def hook(url: str, **kw: Any) -> WebhookActuator:
    kw.setdefault("enabled", True)
    kw.setdefault("backoff_ms", 10)
    return WebhookActuator("ops-hook", url, **kw)


def test_posts_the_action_document_and_takes_the_json_answer(receiver):
    rx = receiver([(200, b'{"ok": true, "detail": "edge limit set", "changes": {"limit_rps": 100}}')])
    res = hook(rx.url, headers={"Authorization": "Bearer t0ken"}).apply(ACTION, 1_767_225_600_000)
    assert res.ok and res.detail == "edge limit set" and res.changes == {"limit_rps": 100}
    assert res.outcome["http_status"] == 200 and res.outcome["attempts"] == 1
    headers, body = rx.got[0]
    assert headers["content-type"] == "application/json" and headers["authorization"] == "Bearer t0ken"
    doc = json.loads(body)
    assert doc["schema"] == "ggen.action/1" and doc["at"] == "2026-01-01T00:00:00.000Z"
    assert doc["action"] == {"name": "throttle", "target": "app", "params": {"max_per_second": 100}, "regions": ["us-central1"], "actor": "runbook:error_rate_spike@1", "incident_id": ACTION.incident_id, "reason": "test"}


def test_retries_server_errors_then_succeeds(receiver):
    rx = receiver([(503, b"busy"), (429, b""), (200, b"")])
    res = hook(rx.url, retries=2).apply(ACTION, 0)
    assert res.ok and res.outcome["attempts"] == 3 and len(rx.got) == 3
    assert "HTTP 200" in res.detail


def test_client_error_is_final(receiver):
    rx = receiver([(400, b"unknown tenant"), (200, b"")])
    res = hook(rx.url, retries=3).apply(ACTION, 0)
    assert not res.ok and res.outcome["attempts"] == 1 and res.outcome["http_status"] == 400
    assert res.detail == "webhook ops-hook: HTTP 400: unknown tenant"


def test_timeouts_and_dropped_connections_are_retried_then_fail(receiver):
    rx = receiver(["hang", "close"], default="hang")
    t0 = time.monotonic()
    res = hook(rx.url, timeout_ms=300, retries=2).apply(ACTION, 0)
    assert time.monotonic() - t0 < 3
    assert not res.ok and res.outcome["attempts"] == 3 and res.outcome["http_status"] is None
    assert "after 3 attempts" in res.detail


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"<html>\x1b[2J oops</html>", "is not JSON"), (b'"yes"', "JSON but not an object"), (b'{"ok": "maybe"}', "'ok' must be true or false")],
)
def test_garbage_answers_fail(receiver, raw, reason):
    rx = receiver([(200, raw)])
    res = hook(rx.url).apply(ACTION, 0)
    assert not res.ok and reason in res.detail
    assert "\x1b" not in res.detail and "\x1b" not in res.outcome["response"]


def test_reported_failure_and_unreachable_and_disabled(receiver):
    rx = receiver([(200, b'{"ok": false, "detail": "quota exhausted", "exhausted": true}')])
    res = hook(rx.url).apply(ACTION, 0)
    assert not res.ok and res.exhausted and "quota exhausted" in res.detail
    res = hook(f"http://127.0.0.1:{free_port()}/x", retries=1).apply(ACTION, 0)
    assert not res.ok and "cannot reach" in res.detail and res.outcome["attempts"] == 2
    off = WebhookActuator("ops-hook", rx.url)
    res = off.apply(ACTION, 0)
    assert not res.ok and res.outcome["dry_run"] and len(rx.got) == 1 and off.calls == 0


def test_a_failing_webhook_escalates_the_incident_through_the_engine(receiver):
    rx = receiver([], default=(500, b"deploy system down"))
    act = hook(rx.url, retries=1, timeout_ms=500)
    eng = Engine(clock=VirtualClock(), seed=2, actuator=ActuatorRouter({act.name: act}, {"*": act.name}))
    eng.run_for(60_000)
    eng.inject("bad_deploy", "app")
    assert eng.run_until(lambda e: any(i.escalated for i in e.incidents.values()), 300_000)
    inc = next(iter(eng.incidents.values()))
    failed = next(e for e in inc.events if e.kind == "mitigation.failed")
    assert failed.data["outcome"]["http_status"] == 500 and failed.data["outcome"]["attempts"] == 2
    assert inc.escalation_reason == "mitigation failed: webhook ops-hook: HTTP 500: deploy system down after 2 attempts"
    assert eng.crashed is None


def test_unrouted_action_fails_cleanly():
    router = ActuatorRouter({}, {"scale_concurrency": "none"})
    res = router.apply(ACTION, 0)
    assert not res.ok and "no actuator is configured" in res.detail
    res = router.apply(Action("scale_concurrency", "acct-1001"), 0)
    assert not res.ok and "route says none" in res.detail
