"""Telemetry of the simulated fleet, in the formats real systems write.

While a scenario plays, :class:`TelemetryRecorder` samples the fleet every tick and writes what an
investigator would collect afterwards: application logs in several real formats (JSON Lines, a
GCP-style nested JSON export, logfmt, log4j text with stack traces, RFC 5424 syslog, an Nginx
access log), OpenTelemetry OTLP/JSON traces, metric series, and a manifest naming the fault, its
target and the incidents with their receipts' figures. The content follows the model: a bad deploy
shows up as exceptions from the new revision, a missing index as slow statements in the database
log, a backlog as growing depth in the governor's lines, the engine's own alerts and actions as
its log. Everything is seeded: the same scenario and seed give the same files.
"""
from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import orjson

from engine.clock import iso_utc
from engine.core import Engine
from engine.mitigate.breaker import CLOSED, STATE_NAMES

ENDPOINTS = {
    "api": [("GET", "/v1/accounts/{id}"), ("POST", "/v1/actions"), ("GET", "/v1/status")],
    "app": [("GET", "/internal/accounts/{id}"), ("POST", "/internal/checkout"), ("GET", "/internal/users/{id}")],
    "upstream": [("POST", "/render")],
    "action-handler": [("POST", "/handle")],
    "external-api": [("POST", "/v2/notify")],
}

# Metric names as the runbooks print them.
METRIC_NAMES = {
    "queue_depth": "custom.governor/queue_depth",
    "lag": "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
    "delivered": "custom.governor/messages_delivered_per_minute",
    "error_rate": "custom.governor/error_rate_percent",
    "errors_per_min": "custom.governor/errors_per_minute",
    "p99": "request_latency_p99_ms",
    "rps": "request_rate_per_second",
    "cpu": "cpu_utilization_percent",
    "memory": "memory_utilization_percent",
}


def _ts_iso(ms: int) -> str:
    return iso_utc(ms)


def _ts_log4j(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S,") + f"{ms % 1000:03d}"


# The Java exception behind an action-handler request failure, by what its message says:
# (words in the message, exception class, exception message, frames of the cause).
_JAVA_CAUSES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("connection refused", "java.net.ConnectException", "Connection refused", ("java.base/sun.nio.ch.Net.pollConnect(Native Method)", "java.base/sun.nio.ch.NioSocketImpl.timedFinishConnect(NioSocketImpl.java:554)")),
    ("timeout after", "java.net.SocketTimeoutException", "Read timed out", ("java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)", "java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)")),
    ("failing fast", "c.ggen.resilience.CallNotPermittedException", "circuit breaker is OPEN and does not permit further calls", ("c.ggen.resilience.CircuitBreaker.acquirePermission(CircuitBreaker.java:212)",)),
    ("database connection", "java.sql.SQLTransientConnectionException", "HikariPool-1 - Connection is not available, request timed out after 30000ms", ("com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",)),
    ("overloaded", "java.util.concurrent.RejectedExecutionException", "request queue full", ("java.base/java.util.concurrent.ThreadPoolExecutor.reject(ThreadPoolExecutor.java:2081)",)),
    ("upstream", "java.io.IOException", "unexpected response from upstream", ("c.ggen.client.HttpClient.send(HttpClient.java:97)",)),
)


def java_stack_trace(message: str, exception: str | None, seed: int) -> str:
    """A Java stack trace for an action-handler request that failed with ``message``: the
    exception line, ``\tat`` frames, ``Caused by:`` and ``... N more``, as log4j prints after
    an ERROR line. ``exception`` (``class: message``) names the cause when known; ``seed``
    picks line numbers, so the same call gives the same text."""
    if exception:
        cls, _, why = exception.partition(": ")
        frames: tuple[str, ...] = ("c.ggen.handler.CheckoutHandler.apply(CheckoutHandler.java:57)",)
    else:
        low = message.lower()
        cls, why, frames = "java.lang.IllegalStateException", message.split(" ", 3)[-1], ("c.ggen.handler.ActionHandler.execute(ActionHandler.java:211)",)
        for words, c, w, f in _JAVA_CAUSES:
            if words in low:
                cls, why, frames = c, w, f
                break
    outer = [
        f"c.ggen.handler.ActionHandler.handle(ActionHandler.java:{120 + seed % 40})",
        "c.ggen.handler.Dispatcher.dispatch(Dispatcher.java:88)",
        "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1144)",
        "java.base/java.util.concurrent.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:642)",
        "java.base/java.lang.Thread.run(Thread.java:1583)",
    ]
    lines = [f"c.ggen.handler.HandlerException: {message}"]
    lines += [f"\tat {f}" for f in outer]
    lines.append(f"Caused by: {cls}: {why}" if why else f"Caused by: {cls}")
    lines += [f"\tat {f}" for f in frames]
    lines.append(f"\t... {len(outer) - 1} more")
    return "\n".join(lines)


def _ts_clf(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%d/%b/%Y:%H:%M:%S +0000")


@dataclass
class TelemetryFiles:
    """The open output files of one recording."""

    root: Path
    gzip: bool = False
    handles: dict[str, IO[bytes]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def write(self, name: str, line: bytes) -> None:
        fh = self.handles.get(name)
        if fh is None:
            path = self.root / (name + ".gz" if self.gzip else name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if self.gzip:
                import gzip

                fh = gzip.GzipFile(path, "wb", compresslevel=9, mtime=0)
            else:
                fh = path.open("wb")
            self.handles[name] = fh
            self.lines[name] = 0
        fh.write(line)
        if not line.endswith(b"\n"):
            fh.write(b"\n")
        self.lines[name] += line.count(b"\n") + (0 if line.endswith(b"\n") else 1)

    def close(self) -> None:
        for fh in self.handles.values():
            fh.close()


class TelemetryRecorder:
    """Samples an engine's fleet after every tick and writes logs, traces and metrics."""

    def __init__(
        self,
        engine: Engine,
        out_dir: Path,
        *,
        seed: int = 1,
        info_every_s: int = 5,
        max_errors_per_s: int = 3,
        trace_every_s: int = 5,
        metric_every_s: int = 10,
        gzip: bool = False,
    ) -> None:
        self.engine = engine
        self.files = TelemetryFiles(Path(out_dir), gzip=gzip)
        self.rng = random.Random(f"telemetry-{seed}")
        self.info_every_ms = info_every_s * 1000
        self.max_errors = max_errors_per_s
        self.trace_every_ms = trace_every_s * 1000
        self.metric_every_ms = metric_every_s * 1000
        self._last_info: dict[str, int] = {}
        self._last_trace = 0
        self._last_metric = 0
        self._breakers = {n: b.state for n, b in engine.fleet.breakers.items()}
        self._revisions = {n: s.revision for n, s in engine.fleet.services.items()}
        self._configs = {n: s.config_version for n, s in engine.fleet.services.items()}
        self._flags = {n: dict(s.feature_flags) for n, s in engine.fleet.services.items()}
        self._replicas = {n: s.replicas for n, s in engine.fleet.services.items()}
        self._concurrency = {n: q.concurrency for n, q in engine.fleet.queues.items()}
        self._pid = 4000 + self.rng.randrange(1000)
        self.span_count = 0

    # ------------------------------------------------------------------ ids
    def _hex(self, nbytes: int) -> str:
        return f"{self.rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"

    def _request_id(self) -> str:
        return f"req-{self._hex(6)}"

    # ------------------------------------------------------------------ the tick
    def on_tick(self) -> None:
        e = self.engine
        now = e.now_ms
        self._changes(now)
        self._engine_log(now)
        for name, s in e.fleet.services.items():
            self._service_logs(name, s, now)
        self._queue_logs(now)
        if now - self._last_trace >= self.trace_every_ms:
            self._last_trace = now
            self._traces(now)
        if now - self._last_metric >= self.metric_every_ms:
            self._last_metric = now
            self._metrics(now)

    # ------------------------------------------------------------------ logs
    def _log(self, service: str, ms: int, level: str, message: str, **fields: Any) -> None:
        """One application log line, in the format that service's team uses."""
        if service == "app":
            rec = {
                "timestamp": _ts_iso(ms),
                "severity": {"WARN": "WARNING"}.get(level, level),
                "jsonPayload": {"message": message, **fields},
                "labels": {"service": "app", "region": self.engine.fleet.serving, "revision": str(self.engine.fleet.services["app"].revision)},
                "logging.googleapis.com/trace": fields.get("trace_id", ""),
            }
            self.files.write("logs/app.gcp.jsonl", orjson.dumps(rec))
        elif service == "governor":
            parts = [f"ts={_ts_iso(ms)}", f"level={level.lower()}", "service=governor", f'msg="{message}"']
            for k, v in fields.items():
                sv = str(v)
                parts.append(f'{k}="{sv}"' if (" " in sv or "=" in sv or sv == "") else f"{k}={sv}")
            self.files.write("logs/governor.logfmt", " ".join(parts).encode())
        elif service == "action-handler":
            extra = " ".join(f"{k}={v}" for k, v in fields.items() if k in ("trace_id", "request_id", "status_code", "duration_ms"))
            line = f"{_ts_log4j(ms)} {level:<5} [worker-{self.rng.randrange(1, 9)}] c.ggen.handler.ActionHandler - {message}" + (f" {extra}" if extra else "")
            if level == "ERROR" and (fields.get("exception") or int(fields.get("status_code") or 0) >= 500):
                # A failed request is logged with its stack trace on the lines below, as log4j
                # does. Line numbers come from a hash of the line (not the shared random
                # stream), so every other line of the set stays as it was.
                line += "\n" + java_stack_trace(message, fields.get("exception"), zlib.crc32(line.encode()))
            self.files.write("logs/action-handler.log", line.encode())
        elif service == "database":
            pri = {"ERROR": 11, "WARN": 12, "INFO": 14, "DEBUG": 15}.get(level, 14) + 16 * 8
            body = " ".join([message] + [f"{k}={v}" for k, v in fields.items() if k not in ("trace_id",)])
            line = f"<{pri}>1 {_ts_iso(ms)} db-1.us-central1 postgres {self._pid} - - {body}"
            self.files.write("logs/database.syslog", line.encode())
        else:
            rec = {"timestamp": _ts_iso(ms), "level": level, "service": service, "message": message, **fields}
            self.files.write(f"logs/{service}.jsonl", orjson.dumps(rec))

    def _access_log(self, ms: int, method: str, path: str, status: int, duration_ms: float, request_id: str) -> None:
        ip = f"10.{self.rng.randrange(0, 255)}.{self.rng.randrange(0, 255)}.{self.rng.randrange(1, 255)}"
        size = 0 if status >= 500 else self.rng.randrange(200, 48_000)
        line = f'{ip} - - [{_ts_clf(ms)}] "{method} {path} HTTP/1.1" {status} {size} "-" "ggen-client/2.3" rt={duration_ms / 1000:.3f} req={request_id}'
        self.files.write("logs/api-access.log", line.encode())

    def _error_story(self, name: str, s) -> tuple[int, str, dict[str, Any]]:
        """Why a request on this service failed, told the way its logs would tell it."""
        f = self.engine.fleet
        for e in s.deps:
            if e.breaker.state != CLOSED:
                return 503, f"circuit {e.breaker.name} {STATE_NAMES[e.breaker.state]}: failing fast", {"dependency": e.dep.name}
            if not e.dep.up:
                return 503, f"connection refused to {e.dep.name}:8080", {"dependency": e.dep.name}
            if e.tshare > 0.2:
                return 504, f"timeout after {e.breaker.policy.timeout_ms} ms waiting for {e.dep.name}", {"dependency": e.dep.name}
        if s.revision in s.bad_revisions:
            return 500, f"NullPointerException in CheckoutHandler.apply (revision {s.revision})", {"revision": s.revision, "exception": "java.lang.NullPointerException: Cannot invoke \"Cart.total()\" because \"cart\" is null"}
        if s.config_version in s.bad_configs:
            return 500, f"payments call timed out after {s.config.get('payments.timeout_ms')} ms (payments.timeout_ms)", {"config_version": s.config_version}
        if any(f.params.get("flag") in s.feature_flags and s.feature_flags.get(f.params.get("flag")) for f in s.schema_faults):
            return 400, "validation_error: field 'account_ref' is required by request schema v2", {"schema_version": s.schema_version}
        if s.pool_in_use > 0:
            return 503, f"could not obtain a database connection ({int(s.pool_in_use)}/{int(s.pool_in_use)} in use)", {"pool_in_use": int(s.pool_in_use)}
        if s.util > 1.0:
            return 503, f"overloaded: request queue full (cpu {int(s.cpu_pct)}%)", {"cpu_pct": int(s.cpu_pct)}
        if f.dns.weights.get(f.primary, 0) > 0 and not f.regions[f.primary].up:
            return 502, f"upstream {f.primary} unreachable", {"region": f.primary}
        bad = [e for e in s.deps if e.dep.err5 + e.dep.err4 > 0.02]
        if bad:
            dep = max(bad, key=lambda e: e.dep.err5 + e.dep.err4).dep
            code = 502 if dep.err5 >= dep.err4 else 400
            return code, f"upstream {dep.name} returned {'5xx' if code == 502 else '4xx'}", {"dependency": dep.name}
        return 500, "internal error", {}

    def _service_logs(self, name: str, s, now: int) -> None:
        if s.kind == "external":
            return
        f = self.engine.fleet
        served = s.served_rps + s.edge_failed_rps
        err_share = min(1.0, s.err5 + s.err4)
        if s.ingress_rps > 0 and s.edge_failed_rps > 0:
            err_share = min(1.0, (s.edge_failed_rps + s.served_rps * (s.err5 + s.err4)) / max(1e-9, served))
        n_err = min(self.max_errors, self._poisson(served * err_share))
        for _ in range(n_err):
            ms = now - self.rng.randrange(0, 1000)
            status, message, extra = self._error_story(name, s)
            if s.err4 > s.err5 and status >= 500 and self.rng.random() < s.err4 / max(1e-9, s.err4 + s.err5):
                status, message, extra = 400, "validation_error: request rejected", {}
            rid = self._request_id()
            method, path = self.rng.choice(ENDPOINTS.get(name, [("POST", "/work")]))
            dur = self._duration(s)
            level = "WARN" if status < 500 else "ERROR"
            self._log(name, ms, level, f"{method} {path} {status} {message}", status_code=status, duration_ms=int(dur), request_id=rid, trace_id=self._hex(16), **extra)
            if name == "api":
                self._access_log(ms, method, path, status, dur, rid)
        last = self._last_info.get(name, 0)
        if now - last >= self.info_every_ms and served > 0:
            self._last_info[name] = now
            method, path = self.rng.choice(ENDPOINTS.get(name, [("POST", "/work")]))
            dur = self._duration(s)
            rid = self._request_id()
            if s.kind == "database":
                for q in self._slow_queries(now):
                    self._log("database", now, "WARN", f"duration: {q.mean_ms:.1f} ms  statement: SELECT * FROM {q.table} WHERE account_id = $1", plan=q.plan.replace(" ", "_"), query_id=q.query_id, missing_index=q.missing_index)
                self._log("database", now, "INFO", f"checkpoint complete: {self.rng.randrange(200, 900)} buffers written", connections=int(min(40, s.in_rps / 20)))
            else:
                self._log(name, now, "INFO", f"{method} {path} 200 in {int(dur)} ms", status_code=200, duration_ms=int(dur), request_id=rid, trace_id=self._hex(16), rps=int(s.in_rps))
                if name == "api":
                    self._access_log(now, method, path, 200, dur, rid)
            if s.memory_pct > 85:
                self._log(name, now, "WARN", f"GC pause {int((s.memory_pct - 80) * 60)} ms (heap {int(s.memory_pct)}% used)", memory_pct=int(s.memory_pct))
            if s.cpu_pct > 80:
                self._log(name, now, "WARN", f"request queue wait {int(s.p50)} ms; cpu {int(s.cpu_pct)}%", cpu_pct=int(s.cpu_pct))
        if name == "api" and f.regions[f.primary].last_check_ms == now and not f.regions[f.primary].last_check_ok:
            self._log("api", now, "ERROR", f"health check failed for https://{f.primary}.ggen.app/health (timeout 5 s)", region=f.primary, status_code=0)

    def _slow_queries(self, now: int):
        from engine.mitigate.actuator import slow_queries

        return slow_queries(self.engine.fleet)

    def _queue_logs(self, now: int) -> None:
        if now - self._last_info.get("governor:queues", 0) < self.info_every_ms:
            return
        self._last_info["governor:queues"] = now
        for acct, q in self.engine.fleet.queues.items():
            level = "WARN" if q.depth > 500 else "INFO"
            self._log(
                "governor",
                now,
                level,
                "backlog" if q.depth > 500 else "delivered batch",
                account_id=acct,
                depth=int(q.depth),
                lag_s=int(q.oldest_age_s),
                concurrency=q.concurrency,
                delivered_per_min=int(q.processed * 60),
                ingest_per_min=int(q.ingest * 60),
            )

    def _changes(self, now: int) -> None:
        """Deploys, config and flag changes, scaling: what a team's own tooling would log."""
        f = self.engine.fleet
        for name, s in f.services.items():
            if s.revision != self._revisions[name]:
                self._log(name if name != "external-api" else "api", now, "INFO", f"deploy: revision {self._revisions[name]} -> {s.revision} rolling out", revision=s.revision, previous_revision=self._revisions[name])
                self._revisions[name] = s.revision
            if s.config_version != self._configs[name]:
                self._log(name, now, "INFO", f"config reloaded: version {self._configs[name]} -> {s.config_version}", config_version=s.config_version)
                self._configs[name] = s.config_version
            if s.feature_flags != self._flags[name]:
                for flag, on in s.feature_flags.items():
                    if self._flags[name].get(flag) != on:
                        self._log(name, now, "INFO", f"feature flag {flag} {'enabled' if on else 'disabled'}", flag=flag, enabled=on)
                self._flags[name] = dict(s.feature_flags)
            if s.replicas != self._replicas[name]:
                self._log(name, now, "INFO", f"replicas {self._replicas[name]} -> {s.replicas}", replicas=s.replicas)
                self._replicas[name] = s.replicas
        for acct, q in f.queues.items():
            if q.concurrency != self._concurrency[acct]:
                self._log("governor", now, "INFO", "concurrency changed", account_id=acct, **{"from": self._concurrency[acct], "to": q.concurrency})
                self._concurrency[acct] = q.concurrency
        for n, b in f.breakers.items():
            if b.state != self._breakers[n]:
                caller = b.caller if b.caller in ("app", "governor", "action-handler", "api") else "api"
                self._log(caller, now, "ERROR" if b.state != CLOSED else "INFO", f"circuit {n} {STATE_NAMES[self._breakers[n]]} -> {STATE_NAMES[b.state]}", circuit=n, dependency=b.dependency)
                self._breakers[n] = b.state

    def _engine_log(self, now: int) -> None:
        """The engine's own log lines (alerts, actions, escalations), as ggen writes them."""
        logs = self.engine.fleet.logs
        new = [x for x in logs if x["ts_ms"] > self._last_info.get("ggen:engine", -1)]
        if new:
            self._last_info["ggen:engine"] = max(x["ts_ms"] for x in new)
        for rec in new:
            out = {"ts": _ts_iso(rec["ts_ms"]), "level": rec["level"], "service": "ggen-engine", "msg": rec["message"], "target_service": rec["service"]}
            out.update({k: v for k, v in rec.items() if k not in ("ts_ms", "level", "service", "message")})
            self.files.write("logs/ggen-engine.jsonl", orjson.dumps(out, default=str))

    # ------------------------------------------------------------------ traces
    def _duration(self, s) -> float:
        sigma = math.log(max(s.p99, s.p50 * 1.01) / max(s.p50, 0.1)) / 2.326
        return max(0.2, s.p50 * math.exp(self.rng.gauss(0.0, sigma)))

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return int(max(0.0, self.rng.gauss(lam, math.sqrt(lam))))
        L = math.exp(-lam)
        k, p = 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= L:
                return k
            k += 1

    def _traces(self, now: int) -> None:
        f = self.engine.fleet
        spans_by_service: dict[str, list[dict[str, Any]]] = {}
        for root in ("api", "governor"):
            if root not in f.services:
                continue
            for want_error in (False, True):
                trace_id = self._hex(16)
                start_ns = (now - self.rng.randrange(0, 1000)) * 1_000_000
                self._span(f.services[root], trace_id, None, start_ns, want_error, spans_by_service, depth=0)
        if not spans_by_service:
            return
        doc = {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}, {"key": "cloud.region", "value": {"stringValue": f.serving}}]},
                    "scopeSpans": [{"scope": {"name": "ggen.sim", "version": "1"}, "spans": spans}],
                }
                for svc, spans in sorted(spans_by_service.items())
            ]
        }
        self.files.write("traces/traces.otlp.jsonl", orjson.dumps(doc))

    def _span(
        self, s, trace_id: str, parent: str | None, start_ns: int, want_error: bool, out: dict[str, list], depth: int, extra_ms: float = 0.0
    ) -> tuple[int, bool]:
        """One server span of ``s`` and, below it, the calls it makes. A call that never reaches its
        dependency (dead service, breaker failing fast, timeout) is a CLIENT span of the caller
        naming the dependency in ``peer.service``, as client instrumentation records it; latency
        added on one edge (a slow query) is spent inside the callee's span."""
        f = self.engine.fleet
        span_id = self._hex(8)
        own = self._duration(s) * (0.4 if s.deps else 1.0) + extra_ms
        t = start_ns + int(own * 0.3 * 1_000_000)
        failed_child = False
        status_message = "request failed"
        err_share = min(1.0, s.own_err5 + (s.err4 if want_error else 0.0))
        edge_failed = False
        if parent is None and getattr(s, "edge_failed_rps", 0.0) > 0 and f.dns.weights.get(f.primary, 0) > 0 and not f.regions[f.primary].up:
            share = s.edge_failed_rps / max(1e-9, s.served_rps + s.edge_failed_rps)
            edge_failed = self.rng.random() < min(1.0, share * (3.0 if want_error else 1.0))
        for e in ([] if edge_failed else s.deps):
            if depth > 4 or self.rng.random() > min(1.0, e.cpr):
                continue
            b = e.breaker
            if b.state != CLOSED and self.rng.random() >= b.passes_traffic:
                t = self._client_span(s, e.dep, trace_id, span_id, t, 0.3, f"circuit {b.name} {STATE_NAMES[b.state]}: failing fast", 503, out)
                failed_child = True
                status_message = f"dependency {e.dep.name} unavailable"
                continue
            if not e.dep.up:
                t = self._client_span(s, e.dep, trace_id, span_id, t, 1.0 + self.rng.random(), f"connection refused to {e.dep.name}:8080", 503, out)
                failed_child = True
                status_message = f"dependency {e.dep.name} unavailable"
                continue
            child_end, child_failed = self._span(e.dep, trace_id, span_id, t, want_error, out, depth + 1, extra_ms=e.extra_ms)
            if e.tshare > 0.2:
                child_end = self._client_span(s, e.dep, trace_id, span_id, t, float(b.policy.timeout_ms), f"timeout after {b.policy.timeout_ms} ms waiting for {e.dep.name}", 504, out)
                child_failed = True
            t = child_end
            if child_failed:
                failed_child = True
                status_message = f"dependency {e.dep.name} failed"
        end = t + int(own * 0.7 * 1_000_000)
        own_failed = (want_error and self.rng.random() < max(err_share, 0.0)) or (not want_error and self.rng.random() < err_share * 0.1)
        failed = edge_failed or failed_child or own_failed or not s.up
        if edge_failed:
            end = start_ns + int((1.0 + self.rng.random() * 4.0) * 1_000_000)
            status_message = f"upstream {f.primary} unreachable"
        elif own_failed and not failed_child:
            status_message = "request failed"
        method, path = self.rng.choice(ENDPOINTS.get(s.name, [("POST", "/work")]))
        name = f"{method} {path}" if s.kind != "database" else "SELECT users"
        code = 502 if edge_failed else 503
        attrs = [{"key": "http.status_code", "value": {"intValue": str(code if failed else 200)}}] if s.kind != "database" else [{"key": "db.system", "value": {"stringValue": "postgresql"}}]
        span = {
            "traceId": trace_id,
            "spanId": span_id,
            "name": name,
            "kind": 2,
            "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(end),
            "attributes": attrs,
            "status": {"code": 2, "message": status_message} if failed else {"code": 1},
        }
        if parent:
            span["parentSpanId"] = parent
        out.setdefault(s.name, []).append(span)
        self.span_count += 1
        return end, failed

    def _client_span(self, caller, dep, trace_id: str, parent: str, start_ns: int, duration_ms: float, message: str, code: int, out: dict[str, list]) -> int:
        """A failed call as the caller's client instrumentation records it; returns its end."""
        method, path = self.rng.choice(ENDPOINTS.get(dep.name, [("POST", "/work")]))
        end = start_ns + int(duration_ms * 1_000_000)
        out.setdefault(caller.name, []).append(
            {
                "traceId": trace_id,
                "spanId": self._hex(8),
                "parentSpanId": parent,
                "name": f"{method} {path}" if dep.kind != "database" else "SELECT users",
                "kind": 3,
                "startTimeUnixNano": str(start_ns),
                "endTimeUnixNano": str(end),
                "attributes": [
                    {"key": "peer.service", "value": {"stringValue": dep.name}},
                    {"key": "http.status_code", "value": {"intValue": str(code)}},
                ],
                "status": {"code": 2, "message": message},
            }
        )
        self.span_count += 1
        return end

    # ------------------------------------------------------------------ metrics
    def _metrics(self, now: int) -> None:
        f = self.engine.fleet
        ts = _ts_iso(now)
        rows = []
        for acct, q in f.queues.items():
            labels = {"account_id": acct, "subscription": f"governor-{acct}"}
            rows.append((METRIC_NAMES["queue_depth"], int(q.depth), "governor", labels))
            rows.append((METRIC_NAMES["lag"], int(q.oldest_age_s), "governor", labels))
            rows.append((METRIC_NAMES["delivered"], int(q.processed * 60), "governor", labels))
        for name, s in f.services.items():
            if s.kind == "external":
                continue
            rows.append((METRIC_NAMES["error_rate"], round(s.error_pct, 3), name, {}))
            rows.append((METRIC_NAMES["errors_per_min"], int(s.served_rps * (s.err5 + s.err4) * 60), name, {}))
            rows.append((METRIC_NAMES["p99"], int(s.p99), name, {}))
            rows.append((METRIC_NAMES["rps"], round(s.in_rps, 1), name, {}))
            rows.append((METRIC_NAMES["cpu"], int(s.cpu_pct), name, {}))
            rows.append((METRIC_NAMES["memory"], int(s.memory_pct), name, {}))
        for n, b in f.breakers.items():
            sig = self.engine.signals("circuit", n)
            labels = {"circuit": n, "dependency": b.dependency}
            rows.append(("circuit_breaker_state", int(b.state), b.caller, labels))
            rows.append(("circuit_breaker_failure_rate_percent", round(sig["error_pct"], 3), b.caller, labels))
            rows.append(("circuit_breaker_latency_p99_ms", int(sig["p99_ms"]), b.caller, labels))
        for region, w in f.dns.weights.items():
            rows.append(("traffic_by_region_percent", int(w), "edge", {"region": region}))
        for name, r in f.regions.items():
            rows.append(("health_check_consecutive_failures", int(r.consecutive_failed), "edge", {"region": name}))
        rows.append(("edge_error_rate_percent", round(f.edge_error_pct, 3), "edge", {}))
        rows.append(("replication_lag_ms", int(max(r.replication_lag_ms for r in f.regions.values())), "database", {}))
        for metric, value, service, labels in rows:
            self.files.write("metrics/metrics.jsonl", orjson.dumps({"timestamp": ts, "metric": metric, "value": value, "service": service, "labels": labels}))

    def close(self) -> dict[str, int]:
        self.files.close()
        suffix = ".gz" if self.files.gzip else ""
        return {name + suffix: n for name, n in self.files.lines.items()}
