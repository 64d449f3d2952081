"""The Prometheus source's reading of answers, against a local HTTP server speaking the query API:
series are mapped to fleet entities (labels, renames, caller/dependency circuits, scope "all"),
NaN answers and empty results leave a signal without a sample, infinities are capped, and HTTP,
PromQL and network failures become per-query errors in the status, never an exception. (A real
Prometheus is in the system tests.)"""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.clock import VirtualClock
from engine.core import Engine
from engine.policy.bundle import load_policy
from engine.sources.mapping import PrometheusMapping
from engine.sources.observed import ObservedFleet
from engine.sources.prometheus import PrometheusSource
from sources_support import free_port

MAPPING = """
[mapping]
window = "30s"
[rename.service]
"checkout" = "api"
[[signals]]
kind = "service"
signal = "p99_ms"
query = 'p99[{window}]'
scale = 1000
[[signals]]
kind = "service"
signal = "cpu_pct"
query = 'cpu'
[[signals]]
kind = "circuit"
signal = "state"
query = 'breaker'
[[signals]]
kind = "region"
signal = "edge_error_pct"
query = 'edge'
scope = "all"
[[signals]]
kind = "queue"
signal = "depth"
query = 'depth'
"""


def vec(*items: tuple[dict, str]) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": m, "value": [1767225600.0, v]} for m, v in items]}}


class FakeApi:
    """Answers /api/v1/query from a table keyed by the query text: a JSON body, (status, body), or "slow"."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.queries: list[str] = []
        api = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("query", [""])[0]
                api.queries.append(q)
                ans = api.answers.get(q, vec())
                if ans == "slow":
                    time.sleep(1.0)
                    ans = vec()
                status, body = ans if isinstance(ans, tuple) else (200, ans)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]


@pytest.fixture
def api():
    made = []

    def make(answers):
        made.append(FakeApi(answers))
        return made[-1]

    yield make
    for a in made:
        a.server.shutdown()
        a.server.server_close()


def source_for(url: str, **kw) -> tuple[PrometheusSource, Engine]:
    import tomllib

    mapping = PrometheusMapping.model_validate(tomllib.loads(MAPPING))
    src = PrometheusSource(url, mapping, timeout_ms=300, **kw)
    policy = load_policy()
    fleet = ObservedFleet(policy.fleet, policy.mitigation, [src])
    eng = Engine(policy, clock=VirtualClock(), fleet=fleet)
    fleet.notify = eng.notice
    src.bind(eng)
    return src, eng


def test_series_map_to_entities(api):
    a = api({
        "p99[30s]": vec(({"service": "app"}, "1.5"), ({"service": "checkout"}, "0.2"), ({"service": "ghost"}, "1"), ({"service": "database"}, "NaN"), ({}, "3")),
        "cpu": vec(({"service": "app"}, "+Inf")),
        "breaker": vec(({"caller": "governor", "dependency": "action-handler"}, "2"), ({"circuit": "api->app"}, "0")),
        "edge": {"status": "success", "data": {"resultType": "scalar", "result": [1767225600.0, "0.75"]}},
    })
    src, eng = source_for(a.url)
    notices: list = []
    eng.on_notice(notices.append)
    stored = src.poll_once()
    got = src.store.fresh(eng.clock.now_ms())
    assert got[("service", "app", "p99_ms")] == 1500.0 and got[("service", "api", "p99_ms")] == 200.0
    assert ("service", "database", "p99_ms") not in got  # NaN is no value
    assert got[("service", "app", "cpu_pct")] == 1e12  # +Inf is capped, not unknown
    assert got[("circuit", "governor->action-handler", "state")] == 2.0 and got[("circuit", "api->app", "state")] == 0.0
    assert {k[1] for k in got if k[2] == "edge_error_pct"} == set(eng.fleet.regions)
    assert stored == len(got)
    assert any(n["kind"] == "source.unknown_entity" and "'ghost'" in n["text"] for n in notices)
    assert src.status()["empty_queries"] == ["queue.depth"] and src.last_error is None
    assert "p99[30s]" in a.queries  # {window} replaced
    eng.run_for(1000)
    assert eng.signals("service", "app")["p99_ms"] == 1500.0
    assert "p99_ms" in eng.fleet.stale["service:database"] and "depth" in eng.fleet.stale["queue:acct-1001"]


def test_failures_are_per_query_errors(api):
    a = api({
        "p99[30s]": (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}),
        "cpu": (200, b"<html>proxy</html>"),
        "breaker": {"status": "error", "error": "query timed out"},
        "edge": "slow",
        "depth": {"status": "success", "data": {"resultType": "matrix", "result": []}},
    })
    src, eng = source_for(a.url)
    assert src.poll_once() == 0
    errs = src.status()["failing_queries"]
    assert errs["service.p99_ms"] == "HTTP 400: bad_data parse error at char 4"
    assert errs["service.cpu_pct"] == "the answer is not JSON"
    assert errs["circuit.state"] == "query failed: query timed out"
    assert "cannot reach" in errs["region.edge_error_pct"] and "timed out" in errs["region.edge_error_pct"]
    assert "resultType 'matrix'" in errs["queue.depth"]
    assert src.last_error.startswith("5 of 5 queries failed") and src.last_ok_ms is None


def test_unreachable_prometheus_and_the_poll_thread(api):
    src, eng = source_for(f"http://127.0.0.1:{free_port()}", interval_ms=100)
    src.start()
    try:
        end = time.monotonic() + 5
        while src.polls < 3 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        src.stop()
    assert src.polls >= 3 and src.attempted and "Connection refused" in src.last_error
    assert src.status()["last_poll_duration_ms"] < 1000
