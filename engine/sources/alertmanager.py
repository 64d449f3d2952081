"""The Alertmanager source: a webhook receiver that turns alerts into incidents.

Alertmanager POSTs a notification (payload version 4) for a group of alerts. Each alert is mapped
through the mapping file (runbooks/sources/alertmanager.toml) to an incident type, an entity of
the fleet model and a severity, then opened with :meth:`Engine.open_external_incident` (firing,
deduplicated on the alert's fingerprint) or resolved with :meth:`Engine.resolve_external_incident`
(``status: resolved``). An alert that cannot be mapped is refused, counted, kept in the status and
announced once as an engine notice, never dropped silently. The answer to each POST says what
happened to every alert.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.config import parse_listen
from engine.sources.base import SignalSource
from engine.sources.mapping import INCIDENT_TYPES, AlertmanagerMapping

_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")


def parse_alert_time(text: Any) -> int | None:
    """Alertmanager's RFC 3339 times (nanosecond fractions allowed) in ms; None for the zero time
    (``0001-01-01T00:00:00Z``, "not ended") or anything unreadable."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text.strip())
    if not m:
        return None
    day, clock, frac, tz = m.groups()
    if day.startswith("0001-"):
        return None
    try:
        dt = datetime.fromisoformat(f"{day}T{clock}" + ("+00:00" if tz in ("Z", "z") else tz))
    except ValueError:
        return None
    ms = int(dt.astimezone(timezone.utc).timestamp()) * 1000
    if frac:
        ms += int((frac + "000")[:3])
    return ms


class AlertRejected(ValueError):
    """An alert the mapping cannot place (no rule, unknown type or entity)."""


class AlertmanagerSource(SignalSource):
    """Receives Alertmanager webhooks on ``listen`` (HOST:PORT) and opens/resolves incidents."""

    kind = "alertmanager"

    def __init__(
        self,
        listen: str,
        mapping: AlertmanagerMapping,
        *,
        path: str | None = None,
        bearer_token: str | None = None,
        max_body_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        super().__init__(listen, stale_after_ms=60_000)
        self.host, self.port = parse_listen(listen)
        self.mapping = mapping
        self.path = path
        self.bearer_token = bearer_token
        self.max_body_bytes = max_body_bytes
        self._server: ThreadingHTTPServer | None = None
        self.counts = {"notifications": 0, "alerts": 0, "opened": 0, "deduplicated": 0, "joined": 0, "resolved": 0, "resolved_unknown": 0, "rejected": 0, "bad_requests": 0}
        self.rejected: deque[dict[str, Any]] = deque(maxlen=100)
        self._announced: set[str] = set()

    def provided(self) -> set[tuple[str, str]]:
        return set()  # alerts are incidents, not signals

    @property
    def address(self) -> tuple[str, int]:
        """The address actually listened on (port 0 in the config picks a free one)."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "AlertmanagerSource":
        source = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "ggen-alert-receiver"
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the status says what happened
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body, sort_keys=True).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if self.path.split("?")[0] in ("/-/healthy", "/-/ready", "/status"):
                    self._answer(200, source.status())
                else:
                    self._answer(405 if source._path_ok(self.path) else 404, {"error": "POST Alertmanager webhook notifications here"})

            def do_POST(self) -> None:
                code, body = source._receive(self.path, dict(self.headers.items()), self.rfile, self.headers.get("Content-Length"))
                self._answer(code, body)

        try:
            self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"the alertmanager source cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self._server.daemon_threads = True
        self.target = "%s:%d" % self.address
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="ggen-source-alertmanager", daemon=True)
        self._thread.start()
        self.attempted = True
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    # ------------------------------------------------------------------ requests
    def _path_ok(self, path: str) -> bool:
        return self.path is None or path.split("?")[0] == self.path

    def _receive(self, path: str, headers: dict[str, str], rfile: Any, length: str | None) -> tuple[int, dict[str, Any]]:
        if not self._path_ok(path):
            return 404, {"error": f"no receiver at {path.split('?')[0]}; POST to {self.path}"}
        if self.bearer_token is not None:
            got = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {self.bearer_token}".encode()):
                self.counts["bad_requests"] += 1
                return 401, {"error": "missing or wrong bearer token"}
        try:
            n = int(length or "")
        except ValueError:
            self.counts["bad_requests"] += 1
            return 411, {"error": "Content-Length required"}
        if n < 0 or n > self.max_body_bytes:
            self.counts["bad_requests"] += 1
            return 413, {"error": f"body of {n} bytes is over the limit of {self.max_body_bytes}"}
        raw = rfile.read(n)
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            self.counts["bad_requests"] += 1
            return 400, {"error": f"not JSON: {exc}"}
        if self.engine is None:
            return 503, {"error": "the engine is not running yet"}
        try:
            return 200, self.receive(payload)
        except AlertRejected as exc:
            self.counts["bad_requests"] += 1
            return 400, {"error": str(exc)}

    def receive(self, payload: Any) -> dict[str, Any]:
        """Handle one notification (already parsed JSON); returns what happened to each alert.
        Raises AlertRejected when the payload itself is not a version-4 notification."""
        if not isinstance(payload, dict):
            raise AlertRejected("the payload is not a JSON object")
        version = str(payload.get("version", ""))
        if version != "4":
            raise AlertRejected(f"payload version {version or '(none)'!r} is not supported (Alertmanager sends version 4)")
        alerts = payload.get("alerts")
        if not isinstance(alerts, list):
            raise AlertRejected("field 'alerts' is missing or not a list")
        with self._lock:
            self.counts["notifications"] += 1
            results = []
            for i, alert in enumerate(alerts):
                self.counts["alerts"] += 1
                try:
                    results.append(self._one(alert, payload))
                except AlertRejected as exc:
                    fp = alert.get("fingerprint") if isinstance(alert, dict) else None
                    results.append(self._reject(str(fp) if fp else f"alerts.{i}", str(exc), alert))
            return {"status": "ok", "alerts": results}

    def _one(self, alert: Any, payload: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(alert, dict):
            raise AlertRejected("the alert is not an object")
        labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else None
        if labels is None:
            raise AlertRejected("the alert has no labels")
        labels = {str(k): str(v) for k, v in labels.items()}
        annotations = {str(k): str(v) for k, v in (alert.get("annotations") or {}).items()} if isinstance(alert.get("annotations"), dict) else {}
        status = alert.get("status") or payload.get("status")
        if status not in ("firing", "resolved"):
            raise AlertRejected(f"status {status!r} is neither firing nor resolved")
        fp = alert.get("fingerprint")
        if not isinstance(fp, str) or not fp:
            fp = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
        eng = self.engine
        if status == "resolved":
            inc = eng.resolve_external_incident(fp, parse_alert_time(alert.get("endsAt")), source=self.kind)
            if inc is None:
                self.counts["resolved_unknown"] += 1
                return {"fingerprint": fp, "result": "resolved_unknown"}
            self.counts["resolved"] += 1
            return {"fingerprint": fp, "result": "resolved" if not inc.open else "alert_resolved", "incident_id": inc.id}
        itype, kind, entity, severity = self.place(labels)
        with eng.lock:
            known_before = eng.external_alerts.get(fp)
            open_before = eng.open_by_key.get((itype, f"{kind}:{entity}"))
            try:
                inc = eng.open_external_incident(
                    itype, kind, entity, severity, source=self.kind, fingerprint=fp, labels=labels, annotations=annotations, starts_at_ms=parse_alert_time(alert.get("startsAt"))
                )
            except ValueError as exc:
                raise AlertRejected(str(exc)) from None
        if known_before == inc.id:
            result = "deduplicated"
        elif open_before == inc.id:
            result = "joined"
        else:
            result = "opened"
        self.counts[result] += 1
        self.last_ok_ms = eng.now_ms
        return {"fingerprint": fp, "result": result, "incident_id": inc.id, "type": itype, "entity": entity, "severity": inc.severity}

    def place(self, labels: dict[str, str]) -> tuple[str, str, str, str]:
        """(incident type, entity kind, entity, severity) for an alert's labels; AlertRejected if none."""
        m = self.mapping
        rule = next((r for r in m.rules if r.matches(labels)), None)
        if rule is None:
            raise AlertRejected(f"no mapping rule matches alert {labels.get('alertname', '(no alertname)')!r}")
        itype = rule.incident_type or labels.get(rule.incident_type_label or "", "")
        if itype not in INCIDENT_TYPES:
            raise AlertRejected(f"rule {rule.name!r}: {itype!r} is not an incident type ({', '.join(INCIDENT_TYPES)})")
        kind = self.engine.policy.runbooks[itype].runbook.entity
        if rule.entity is not None:
            raw = rule.entity
        elif rule.entity_label is not None:
            raw = labels.get(rule.entity_label)
        else:
            raw = m.labels.entity(kind, labels)
        if not raw:
            label = rule.entity_label or getattr(m.labels, kind)
            raise AlertRejected(f"rule {rule.name!r}: the alert has no {label!r} label naming the {kind}")
        entity = m.rename.apply(kind, raw)
        if entity not in self.known.get(kind, set()):
            self.note_unknown(kind, entity)
            raise AlertRejected(f"{kind} {entity!r} is not in the fleet model (add a rename to the mapping)")
        if rule.severity is not None:
            severity = rule.severity
        else:
            value = labels.get(rule.severity_label or m.alertmanager.severity_label, "")
            severity = m.severity.get(value.lower(), m.alertmanager.default_severity)
        return itype, kind, entity, severity

    def _reject(self, fp: str, reason: str, alert: Any) -> dict[str, Any]:
        self.counts["rejected"] += 1
        name = alert.get("labels", {}).get("alertname", "") if isinstance(alert, dict) and isinstance(alert.get("labels"), dict) else ""
        self.rejected.append({"fingerprint": fp, "alertname": str(name)[:200], "reason": reason[:500]})
        if fp not in self._announced and self.engine is not None and len(self._announced) < 10_000:
            self._announced.add(fp)
            self.engine.notice("alert.rejected", f"alertmanager: alert {str(name)[:80] or fp} refused: {reason[:300]}", fingerprint=fp, reason=reason[:500])
        return {"fingerprint": fp, "result": "rejected", "reason": reason}

    def status(self) -> dict[str, Any]:
        st = super().status()
        st.update(listen="%s:%d" % self.address, path=self.path or "(any)", counts=dict(self.counts), rejected=list(self.rejected)[-10:])
        return st
