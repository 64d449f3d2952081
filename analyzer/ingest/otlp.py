"""OpenTelemetry OTLP/JSON: traces, logs and metrics as the protocol's JSON encoding writes them.

Accepts one request document per line (what the OTLP file exporter writes) or one pretty-printed
document. Follows the OTLP/JSON rules: lowerCamelCase keys (snake_case also accepted), trace and
span ids as hex (base64, which protobuf's generic JSON mapping writes, is converted), 64-bit
integers as strings or numbers, enums as integers or names.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import orjson

SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TS_MIN_NS = 0
TS_MAX_NS = 7_258_118_400 * 10**9  # 2200-01-01


@dataclass
class OtlpRows:
    """Rows extracted from one OTLP file, ready for the normalized tables."""

    spans: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    metrics: list[tuple] = field(default_factory=list)
    rejects: list[tuple[int, str, bytes, int]] = field(default_factory=list)
    records: int = 0  # spans + log records + data points seen (each becomes a row or a reject)
    span_seen: int = 0


def _get(obj: dict, camel: str, default: Any = None) -> Any:
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake, default)


def any_value(v: Any) -> Any:
    """A plain Python value from an OTLP AnyValue."""
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "string_value"):
        if key in v:
            return v[key]
    for key in ("boolValue", "bool_value"):
        if key in v:
            return bool(v[key])
    for key in ("intValue", "int_value"):
        if key in v:
            try:
                return int(v[key])
            except (TypeError, ValueError):
                return v[key]
    for key in ("doubleValue", "double_value"):
        if key in v:
            try:
                return float(v[key])
            except (TypeError, ValueError):
                return v[key]
    for key in ("arrayValue", "array_value"):
        if key in v:
            return [any_value(x) for x in (v[key] or {}).get("values", [])]
    for key in ("kvlistValue", "kvlist_value"):
        if key in v:
            return attributes((v[key] or {}).get("values", []))
    for key in ("bytesValue", "bytes_value"):
        if key in v:
            return v[key]
    return None


def attributes(kvs: Any) -> dict[str, Any]:
    """``[{"key": k, "value": AnyValue}]`` as a dict."""
    out: dict[str, Any] = {}
    if isinstance(kvs, list):
        for kv in kvs:
            if isinstance(kv, dict) and "key" in kv:
                out[str(kv["key"])] = any_value(kv.get("value"))
    return out


def hex_id(value: Any, nbytes: int) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id as lowercase hex; base64 input is converted."""
    if value is None or value == "":
        return None
    s = str(value)
    if len(s) == 2 * nbytes:
        try:
            int(s, 16)
            return None if set(s) == {"0"} else s.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"id {s[:40]!r} is neither {2 * nbytes} hex digits nor base64") from None
    if len(raw) != nbytes:
        raise ValueError(f"id {s[:40]!r} is not {nbytes} bytes")
    return raw.hex()


def nanos(value: Any) -> int | None:
    """A fixed64 nanosecond timestamp (string or number); None when absent or zero."""
    if value is None or value == "" or value == 0 or value == "0":
        return None
    n = int(value)
    if not TS_MIN_NS < n < TS_MAX_NS:
        raise ValueError(f"timestamp {value} ns is out of range (1970..2200)")
    return n


def to_dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=timezone.utc).replace(microsecond=(ns // 1000) % 1_000_000)


def _enum(value: Any, table: dict[int, str], prefix: str) -> str:
    if isinstance(value, str) and not value.isdigit():
        name = value.upper()
        return name[len(prefix):] if name.startswith(prefix) else name
    try:
        return table.get(int(value or 0), str(value))
    except (TypeError, ValueError):
        return str(value)


def severity_level(number: Any, text: Any) -> str:
    """TRACE..FATAL from an OTLP severityNumber (1-24) or, without one, its text."""
    n = 0
    if isinstance(number, str) and not number.isdigit():
        names = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
        for k, v in names.items():
            if k in number.upper():
                n = v
    else:
        try:
            n = int(number or 0)
        except (TypeError, ValueError):
            n = 0
    if n <= 0:
        t = str(text or "").upper()
        for lvl in ("FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"):
            if t.startswith(lvl):
                return lvl
        return "INFO"
    return ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")[min((n - 1) // 4, 5)]


def _dump(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def documents(lines: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes, Any]]:
    """``(line, raw, parsed-or-exception)`` for each non-blank line."""
    for n, raw in lines:
        if not raw.strip():
            continue
        try:
            yield n, raw, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield n, raw, exc


def extract(doc: dict, line: int, raw: bytes, out: OtlpRows, source_file: str, service_default: str | None) -> None:
    """Append the spans, log records and metric points of one OTLP request document to ``out``."""
    for rs in _get(doc, "resourceSpans", []) or []:
        res = attributes(_get(_get(rs, "resource", {}) or {}, "attributes", []))
        service = res.get("service.name") or service_default
        scopes = _get(rs, "scopeSpans", None) or _get(rs, "instrumentationLibrarySpans", []) or []
        for ss in scopes:
            scope = _get(ss, "scope", None) or _get(ss, "instrumentationLibrary", {}) or {}
            for sp in _get(ss, "spans", []) or []:
                index = out.span_seen
                out.span_seen += 1
                out.records += 1
                try:
                    out.spans.append(_span(sp, res, scope, service, source_file, index))
                except (ValueError, TypeError, AttributeError) as exc:
                    body = _dump(sp).encode()
                    out.rejects.append((line, f"span {index}: {exc}", body[:2048], len(body)))
    for rl in _get(doc, "resourceLogs", []) or []:
        res = attributes(_get(_get(rl, "resource", {}) or {}, "attributes", []))
        service = res.get("service.name") or service_default
        host = res.get("host.name")
        scopes = _get(rl, "scopeLogs", None) or _get(rl, "instrumentationLibraryLogs", []) or []
        for sl in scopes:
            scope = _get(sl, "scope", None) or {}
            for rec in _get(sl, "logRecords", []) or []:
                out.records += 1
                number = out.records
                try:
                    out.events.append(_log(rec, res, scope, service, host, source_file, number))
                except (ValueError, TypeError, AttributeError) as exc:
                    body = _dump(rec).encode()
                    out.rejects.append((line, f"log record {number}: {exc}", body[:2048], len(body)))
    for rm in _get(doc, "resourceMetrics", []) or []:
        res = attributes(_get(_get(rm, "resource", {}) or {}, "attributes", []))
        service = res.get("service.name") or service_default
        for sm in _get(rm, "scopeMetrics", []) or []:
            for metric in _get(sm, "metrics", []) or []:
                name = metric.get("name")
                for kind in ("gauge", "sum", "histogram"):
                    data = metric.get(kind)
                    if not isinstance(data, dict):
                        continue
                    for dp in _get(data, "dataPoints", []) or []:
                        out.records += 1
                        try:
                            out.metrics.extend(_points(name, kind, dp, service, source_file, line))
                        except (ValueError, TypeError, AttributeError) as exc:
                            body = _dump(dp).encode()
                            out.rejects.append((line, f"metric {name} point: {exc}", body[:2048], len(body)))


def _span(sp: dict, res: dict, scope: dict, service: str | None, source_file: str, index: int) -> tuple:
    trace_id = hex_id(_get(sp, "traceId"), 16)
    span_id = hex_id(_get(sp, "spanId"), 8)
    if trace_id is None or span_id is None:
        raise ValueError("missing traceId or spanId")
    start = nanos(_get(sp, "startTimeUnixNano"))
    end = nanos(_get(sp, "endTimeUnixNano"))
    if start is None:
        raise ValueError("missing startTimeUnixNano")
    if end is not None and end < start:
        raise ValueError("endTimeUnixNano is before startTimeUnixNano")
    status = _get(sp, "status", {}) or {}
    attrs = attributes(_get(sp, "attributes", []))
    extra_res = {k: v for k, v in res.items() if k != "service.name"}
    if extra_res:
        attrs["resource"] = extra_res
    if scope.get("name"):
        attrs["otel.scope"] = scope.get("name")
    events = []
    for ev in _get(sp, "events", []) or []:
        t = nanos(_get(ev, "timeUnixNano"))
        events.append({"time": to_dt(t).isoformat() if t else None, "name": ev.get("name"), "attributes": attributes(ev.get("attributes", []))})
    if events:
        attrs["events"] = events
    links = _get(sp, "links", []) or []
    if links:
        attrs["links"] = [{"trace_id": hex_id(_get(lk, "traceId"), 16), "span_id": hex_id(_get(lk, "spanId"), 8)} for lk in links]
    return (
        trace_id,
        span_id,
        hex_id(_get(sp, "parentSpanId"), 8),
        service,
        sp.get("name"),
        _enum(sp.get("kind", 0), SPAN_KINDS, "SPAN_KIND_"),
        to_dt(start),
        to_dt(end) if end is not None else None,
        (end - start) / 1e6 if end is not None else None,
        _enum(status.get("code", 0), STATUS_CODES, "STATUS_CODE_"),
        status.get("message") or None,
        _dump(attrs),
        source_file,
        index,
    )


def _log(rec: dict, res: dict, scope: dict, service: str | None, host: Any, source_file: str, number: int) -> tuple:
    t = nanos(_get(rec, "timeUnixNano")) or nanos(_get(rec, "observedTimeUnixNano"))
    if t is None:
        raise ValueError("missing timeUnixNano and observedTimeUnixNano")
    body = any_value(rec.get("body"))
    message = body if isinstance(body, str) else (_dump(body) if body is not None else "")
    attrs = attributes(_get(rec, "attributes", []))
    extra_res = {k: v for k, v in res.items() if k not in ("service.name", "host.name")}
    if extra_res:
        attrs["resource"] = extra_res
    if scope.get("name"):
        attrs["otel.scope"] = scope.get("name")
    if _get(rec, "eventName"):
        attrs["event.name"] = _get(rec, "eventName")
    raw_level = _get(rec, "severityText") or (str(_get(rec, "severityNumber")) if _get(rec, "severityNumber") else None)
    return (
        to_dt(t),
        severity_level(_get(rec, "severityNumber"), _get(rec, "severityText")),
        raw_level,
        service,
        str(host) if host is not None else None,
        message,
        hex_id(_get(rec, "traceId"), 16),
        hex_id(_get(rec, "spanId"), 8),
        attrs.get("request_id") or attrs.get("http.request_id"),
        _dump(attrs),
        source_file,
        number,
    )


def _points(name: Any, kind: str, dp: dict, service: str | None, source_file: str, line: int) -> list[tuple]:
    if not name:
        raise ValueError("metric without a name")
    t = nanos(_get(dp, "timeUnixNano"))
    if t is None:
        raise ValueError("missing timeUnixNano")
    labels = _dump(attributes(_get(dp, "attributes", [])))
    ts = to_dt(t)
    if kind == "histogram":
        # One row per point, like gauges: the value is the mean; count, sum and buckets are labels.
        count = int(_get(dp, "count", 0) or 0)
        total = float(_get(dp, "sum", 0) or 0)
        attrs = attributes(_get(dp, "attributes", []))
        attrs["histogram"] = {
            "count": count,
            "sum": total,
            "bucket_counts": [int(x) for x in _get(dp, "bucketCounts", []) or []],
            "explicit_bounds": [float(x) for x in _get(dp, "explicitBounds", []) or []],
        }
        return [(ts, service, str(name), total / count if count else 0.0, _dump(attrs), source_file, line)]
    if _get(dp, "asDouble") is not None:
        value = float(_get(dp, "asDouble"))
    elif _get(dp, "asInt") is not None:
        value = float(int(_get(dp, "asInt")))
    else:
        raise ValueError("data point without asDouble or asInt")
    return [(ts, service, str(name), value, labels, source_file, line)]
