"""Read-only operations: what the runbooks' Diagnose commands ask of the live engine.

Each function takes the :class:`~engine.control.operations.Operations` and its validated
arguments, reads the engine under its lock, and returns plain JSON-able data (numbers stay
floats here; faces round them).
"""
from __future__ import annotations

import zlib
from typing import Any, Literal

from pydantic import Field

from engine.clock import iso_utc
from engine.control import logfilter
from engine.control.catalog import COLUMNS, MetricDef
from engine.control.history import MINUTE_MS, entity_row
from engine.control.operations import Args, NoArgs
from engine.control.protocol import BAD_ARGUMENT, NOT_FOUND, OpError
from engine.mitigate.breaker import STATE_NAMES

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


# ----------------------------------------------------------------------------- metrics
class MetricsArgs(Args):
    metric: str | None = None
    service: str | None = None
    metrics: list[str] | None = None
    quantiles: list[str] | None = None
    grouped_by: str | None = None
    since: str | None = None
    aggregation: Literal["minute", "hourly", "daily"] | None = None


def _entities(ops: Any, kind: str, service: str | None) -> list[str]:
    f = ops.engine.fleet
    if kind == "service":
        names = [n for n, s in f.services.items()]
        if service is None:
            return names
        ops.service(service)
        return [service]
    if kind == "queue":
        if service is None:
            return list(f.queues)
        if service in f.queues:
            return [service]
        ops.service(service)
        return [n for n, q in f.queues.items() if q.consumer == service]
    if kind == "circuit":
        if service is None:
            return list(f.breakers)
        if service in f.breakers:
            return [service]
        ops.service(service)
        return [n for n, b in f.breakers.items() if service in (b.caller, b.dependency)]
    if service is not None and service not in f.regions:
        ops.service(service)  # a service name is fine: traffic by region is fleet-wide
    return [service] if service in f.regions else list(f.regions)


def _not_keyed_by(ops: Any, metric: str, kind: str, service: str) -> str:
    """Why a service names no row of a metric kept per tenant queue or per circuit."""
    f = ops.engine.fleet
    if kind == "queue":
        consumers = sorted({q.consumer for q in f.queues.values()})
        return f"{metric} is kept per tenant queue, and {service!r} consumes none (give a tenant: {', '.join(f.queues)}; or its consumer: {', '.join(consumers)})"
    return f"{metric} is kept per circuit, and no circuit calls or guards {service!r} (circuits: {', '.join(f.breakers)})"


def _stats(values: list[float]) -> dict[str, float]:
    return {"last": values[-1], "min": min(values), "avg": sum(values) / len(values), "max": max(values)}


def metrics_get(ops: Any, a: MetricsArgs) -> dict[str, Any]:
    cat = ops.catalog
    if a.metric and a.metrics:
        raise OpError(BAD_ARGUMENT, "give either --metric NAME or --metrics a,b,c, not both", "metrics")
    if not a.metric and not a.metrics:
        raise OpError(BAD_ARGUMENT, "name a metric (--metric NAME) or service metrics (--metrics errors,latency,cpu,memory)", "metric")
    if a.metric:
        mdef = cat.metric(a.metric)
        if mdef is None:
            raise OpError(BAD_ARGUMENT, f"unknown metric {a.metric!r} (known: {', '.join(m.name for m in cat.metrics)})", "metric")
        kind = mdef.entity
        columns = list(mdef.columns)
        title, description = mdef.name, mdef.description
    else:
        kind = "service"
        columns = []
        for name in a.metrics or []:
            name = name.strip()
            cols = cat.groups.get(name) or ([name] if name in COLUMNS["service"] else None)
            if cols is None:
                raise OpError(BAD_ARGUMENT, f"unknown service metric {name!r} (known: {', '.join(sorted(cat.groups))}, or a signal such as p99_ms)", "metrics")
            columns += [c for c in cols if c not in columns]
        mdef = MetricDef(name="service", entity="service", description="service signals", columns=columns)
        title, description = ",".join(a.metrics or []), "service signals"
    if a.quantiles:
        if not mdef.quantiles:
            raise OpError(BAD_ARGUMENT, f"{title} has no quantiles", "quantiles")
        qcols = []
        for q in a.quantiles:
            q = q.strip().lower()
            if q not in mdef.quantiles:
                raise OpError(BAD_ARGUMENT, f"{title} has no quantile {q!r} (it has: {', '.join(mdef.quantiles)})", "quantiles")
            qcols.append(mdef.quantiles[q])
        columns = qcols + [c for c in columns if c not in qcols and c not in mdef.quantiles.values()]
    if a.grouped_by is not None and a.grouped_by not in mdef.group_by:
        allowed = ", ".join(mdef.group_by) or "nothing"
        raise OpError(BAD_ARGUMENT, f"{title} can be grouped by {allowed}, not {a.grouped_by!r}", "grouped_by")
    eng = ops.engine
    with eng.lock:
        names = _entities(ops, kind, a.service)
        if not names and a.service is not None:
            raise OpError(BAD_ARGUMENT, _not_keyed_by(ops, title, kind, a.service), "service")
        now = eng.now_ms
        since = ops.time_ref(a.since, "since")
        idx = [COLUMNS[kind].index(c) for c in columns]
        out: dict[str, Any] = {"metric": title, "entity": kind, "description": description, "columns": columns, "now_ms": now, "since_ms": since, "aggregation": a.aggregation}
        rows = []
        for n in names:
            cur = entity_row(eng, kind, n)
            row: dict[str, Any] = {"name": n, "now": {c: cur[i] for c, i in zip(columns, idx)}}
            if since is not None or a.aggregation:
                row.update(_window(ops, kind, n, columns, idx, since if since is not None else now - DAY_MS, a.aggregation))
            rows.append(row)
        out["rows"] = rows
        if a.grouped_by == "error_code":
            out["groups"] = _by_status(ops, names if kind == "service" else [], since)
        return out


def _window(ops: Any, kind: str, name: str, columns: list[str], idx: list[int], since: int, aggregation: str | None) -> dict[str, Any]:
    h = ops.history
    now = ops.engine.now_ms
    if h is None:
        return {"window": None, "note": "this engine keeps no history; showing current values"}
    ring = h.recent.get((kind, name))
    # Full resolution when the ring still holds everything since ``since`` (or everything ever).
    use_minutes = bool(aggregation) or ring is None or ring.n == 0 or (since < (ring.oldest_ms or 0) and ring.n >= ring.capacity)
    if not use_minutes:
        samples = h.window(kind, name, since)
        if not samples:
            return {"window": None, "note": "no samples in the window yet"}
        stats = {c: _stats([row[i] for _, row in samples]) for c, i in zip(columns, idx)}
        return {"window": {"from_ms": samples[0][0], "to_ms": samples[-1][0], "samples": len(samples), "resolution": "tick", "stats": stats}}
    avg, mx = h.minutes(kind, name, since)
    if not avg:
        return {"window": None, "note": "no samples in the window yet"}
    covered = avg[0][0]
    result: dict[str, Any] = {}
    if aggregation:
        size = {"minute": MINUTE_MS, "hourly": HOUR_MS, "daily": DAY_MS}[aggregation]
        buckets: dict[int, dict[str, list[float]]] = {}
        peaks: dict[int, dict[str, float]] = {}
        for (t, row), (_, mrow) in zip(avg, mx):
            b = t - t % size
            acc = buckets.setdefault(b, {c: [] for c in columns})
            pk = peaks.setdefault(b, {c: float("-inf") for c in columns})
            for c, i in zip(columns, idx):
                acc[c].append(row[i])
                pk[c] = max(pk[c], mrow[i])
        result["buckets"] = [
            {"start_ms": b, "minutes": len(next(iter(acc.values()))), "avg": {c: sum(v) / len(v) for c, v in acc.items()}, "max": peaks[b]}
            for b, acc in sorted(buckets.items())
        ]
    stats = {c: {"last": avg[-1][1][i], "min": min(r[i] for _, r in avg), "avg": sum(r[i] for _, r in avg) / len(avg), "max": max(r[i] for _, r in mx)} for c, i in zip(columns, idx)}
    result["window"] = {"from_ms": covered, "to_ms": now, "samples": len(avg), "resolution": "minute", "stats": stats}
    if covered > since + MINUTE_MS:
        result["note"] = f"history covers only since {iso_utc(covered)} (the engine started then)"
    return result


def _by_status(ops: Any, services: list[str], since: int | None) -> list[dict[str, Any]]:
    f = ops.engine.fleet
    out = []
    for n in services:
        s = f.services[n]
        # Averages over the window's ticks (a tick without failures counts as zero).
        if since is not None and ops.history is not None:
            samples = ops.history.codes_since(n, since)
            span = max(1, len(ops.history.window("service", n, since)))
            share: dict[int, float] = {}
            rps: dict[int, float] = {}
            for _, d in samples:
                for code, (sh, r) in d.items():
                    share[code] = share.get(code, 0.0) + sh
                    rps[code] = rps.get(code, 0.0) + r
            share = {c: v / span for c, v in share.items()}
            rps = {c: v / span for c, v in rps.items()}
        else:
            share = f.error_breakdown(s)
            rps = {c: v * s.in_rps for c, v in share.items()}
        for code in sorted(rps, key=lambda c: -rps[c]):
            if rps[code] <= 0:
                continue
            out.append({"service": n, "error_code": code, "class": f"{code // 100}xx", "rps": rps[code], "per_min": rps[code] * 60.0, "pct_of_requests": 100.0 * share.get(code, 0.0)})
    return out


# ----------------------------------------------------------------------------- circuits, services
def circuits_status(ops: Any, a: NoArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        rows = []
        for name, b in f.breakers.items():
            sig = eng.signals("circuit", name)
            since = b.half_open_at_ms if b.state == 1 else (b.opened_at_ms if b.state == 2 else None)
            p = b.policy
            rows.append(
                {
                    "name": name,
                    "caller": b.caller,
                    "dependency": b.dependency,
                    "state": STATE_NAMES[b.state],
                    "since_ms": since,
                    "override": None if b.override_state is None else {"state": STATE_NAMES[b.override_state], "until_ms": b.override_until_ms},
                    "consecutive_errors": b.consecutive_errors,
                    "window_error_pct": b.window_error_pct(),
                    "probe_successes": b.probe_successes,
                    "opened_count": b.open_count,
                    "dependency_error_pct": sig["error_pct"],
                    "dependency_p99_ms": sig["p99_ms"],
                    "dependency_healthy": bool(sig["healthy"]),
                    "policy": {"count": p.count, "rate_pct": p.rate_pct, "timeout_ms": p.timeout_ms, "probe_mode": p.probe_mode, "probe_interval_s": p.probe_interval_s, "close_after_successes": p.close_after_successes, "fallback": p.fallback},
                }
            )
        return {"now_ms": eng.now_ms, "circuits": rows, "open": sum(1 for r in rows if r["state"] != "CLOSED")}


def service_problems(ops: Any, name: str) -> list[str]:
    """Why a service is not OK right now (empty when it is)."""
    eng = ops.engine
    s = eng.fleet.services[name]
    sig = eng.signals("service", name)
    why = []
    if not s.up:
        why.append("restarting" if s.restart_ready_ms is not None else ("crash loop" if s.crashed else "down"))
        return why
    if sig["error_pct"] >= 5:
        why.append(f"errors {sig['error_pct']:.1f} %")
    if sig["p99_ms"] > 1000:
        why.append(f"p99 {sig['p99_ms']:.0f} ms")
    if sig["cpu_pct"] > 80:
        why.append(f"cpu {sig['cpu_pct']:.0f} %")
    if sig["memory_pct"] > 85:
        why.append(f"memory {sig['memory_pct']:.0f} %")
    if s.pool_in_use > 0:
        why.append(f"connection pool exhausted ({int(s.pool_in_use)} in use)")
    if sig["open_breakers"] > 0:
        why.append(f"{int(sig['open_breakers'])} breaker(s) open on its calls")
    return why


def services_health(ops: Any, a: NoArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        rows = []
        for name, s in f.services.items():
            sig = eng.signals("service", name)
            why = service_problems(ops, name)
            stale = sorted(getattr(f, "stale", {}).get(f"service:{name}", ()))
            status = "OK"
            if not s.up:
                status = "RESTARTING" if s.restart_ready_ms is not None else "DOWN"
            elif why:
                status = "DEGRADED"
            if stale and status == "OK":
                # Nothing is healthy that nobody can see: missing signals are never "OK".
                status = "UNKNOWN"
                why = why + [f"stale signals: {', '.join(stale)}"]
            rows.append(
                {
                    "name": name,
                    "kind": s.kind,
                    "status": status,
                    "problems": why,
                    "critical": s.critical,
                    "up": s.up,
                    "healthy": bool(sig["healthy"]),
                    "replicas": s.replicas,
                    "pending_replicas": sum(c for _, c in s.pending_replicas),
                    "rps": sig["rps"],
                    "error_pct": sig["error_pct"],
                    "error_5xx_pct": sig["error_5xx_pct"],
                    "error_4xx_pct": sig["error_4xx_pct"],
                    "p99_ms": sig["p99_ms"],
                    "cpu_pct": sig["cpu_pct"],
                    "memory_pct": sig["memory_pct"],
                    "revision": s.revision,
                    "config_version": s.config_version,
                    "schema_version": s.schema_version,
                    "rate_limit_rps": s.rate_limit_rps,
                    "compression": s.compression_algorithm,
                }
            )
        return {"now_ms": eng.now_ms, "services": rows, "serving_region": f.serving}


# ----------------------------------------------------------------------------- governor
class GovernorArgs(Args):
    account_id: str | None = None


def governor_status(ops: Any, a: GovernorArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        names = [ops.tenant(a.account_id).account_id] if a.account_id is not None else list(f.queues)
        rows = []
        for n in names:
            q = f.queues[n]
            sig = eng.signals("queue", n)
            rows.append(
                {
                    "account_id": n,
                    "consumer": q.consumer,
                    "concurrency": q.concurrency,
                    "baseline_concurrency": q.baseline_concurrency,
                    "max_concurrency": q.max_concurrency,
                    "quota": q.quota,
                    "limit": q.limit,
                    "depth": sig["depth"],
                    "lag_p50_s": sig["lag_p50_s"],
                    "lag_p99_s": sig["lag_p99_s"],
                    "ingest_per_s": sig["ingest_per_s"],
                    "processing_per_s": sig["processing_per_s"],
                    "net_drain_per_s": sig["net_drain_per_s"],
                    "concurrency_used_pct": sig["concurrency_used_pct"],
                    "rate_limit_per_s": q.rate_limit_per_s,
                    "last_scaled_ms": q.last_scaled_ms,
                    "high_value": q.high_value,
                }
            )
        return {"now_ms": eng.now_ms, "tenants": rows, "safety": eng.governor.status(eng.now_ms)}


# ----------------------------------------------------------------------------- replication
def _replication(ops: Any) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    ok_ms = eng.policy.mitigation.failover.replication_lag_ok_ms
    regions = []
    for name, r in f.regions.items():
        regions.append(
            {
                "name": name,
                "role": r.role,
                "serving": name == f.serving,
                "up": r.up,
                "last_check_ok": r.last_check_ok,
                "consecutive_passed_checks": r.consecutive_passed,
                "consecutive_failed_checks": r.consecutive_failed,
                "traffic_pct": f.dns.weights.get(name, 0.0),
                "replication_lag_ms": r.replication_lag_ms,
                "records": int(round(r.records)),
                "stranded_records": int(round(r.stranded)),
                "replaying_records": int(round(r.catchup)),
            }
        )
    conflicts = f.replication_conflicts()
    lag = max((x["replication_lag_ms"] for x in regions if x["up"]), default=0.0)
    if any(not x["up"] for x in regions):
        status = "DEGRADED"
    elif conflicts:
        status = "INCONSISTENT"
    elif lag >= ok_ms or any(x["replaying_records"] for x in regions):
        status = "LAGGING"
    else:
        status = "OK"
    return {"now_ms": eng.now_ms, "status": status, "regions": regions, "replication_lag_ms": lag, "lag_ok_ms": ok_ms, "conflicts": conflicts, "lost_records": f.lost_records, "dns_moving": f.dns.moving, "serving_region": f.serving}


def replication_status(ops: Any, a: NoArgs) -> dict[str, Any]:
    with ops.engine.lock:
        return _replication(ops)


class VerifyArgs(Args):
    bidirectional: bool = False
    timeout_ms: int = Field(default=300_000, ge=0, le=3_600_000)


def replication_verify(ops: Any, a: VerifyArgs) -> dict[str, Any]:
    """Compare per-region record counts (both directions with ``bidirectional``), waiting up to
    ``timeout_ms`` of engine time for replays to finish."""
    eng = ops.engine
    f = eng.fleet

    def settled() -> bool:
        if not all(r.up for r in f.regions.values()):
            return True  # nothing to wait for: unreachable
        if f.replication_conflicts():
            return True
        if a.bidirectional:
            return all(r.catchup <= 0 for r in f.regions.values())
        return all(r.catchup <= 0 for n, r in f.regions.items() if n != f.serving)

    _, waited = ops.wait_engine(settled, a.timeout_ms)
    with eng.lock:
        rep = _replication(ops)
        serving = f.serving
        directions = []
        for src, dst in [(x, y) for x in f.regions for y in f.regions if x != y]:
            if not a.bidirectional and src != serving:
                continue
            r_dst = f.regions[dst]
            r_src = f.regions[src]
            missing = r_dst.catchup + (r_src.stranded if r_src.diverged else 0.0)
            directions.append({"from": src, "to": dst, "missing_records": int(round(missing))})
        down = [r.name for r in f.regions.values() if not r.up]
        conflicts = f.replication_conflicts()
        counts = {n: int(round(r.records)) for n, r in f.regions.items()}
        if down:
            status, message = "UNREACHABLE", f"{', '.join(down)} does not answer: record counts cannot be compared"
        elif conflicts:
            holder = next(r.name for r in f.regions.values() if r.diverged)
            status, message = "INCONSISTENT", f"{conflicts} records on {holder} never reached the other region, which took writes meanwhile: settle them with ggen replication conflict-resolve"
        elif any(d["missing_records"] for d in directions):
            status, message = "TIMEOUT", f"replication still replaying after {waited // 1000} s: " + ", ".join(f"{d['to']} misses {d['missing_records']}" for d in directions if d["missing_records"])
        elif len(set(counts.values())) > 1:
            status, message = "INCONSISTENT", "record counts differ: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        else:
            status, message = "CONSISTENT", f"record counts match ({next(iter(counts.values()))} records)" + (" in both directions" if a.bidirectional else "")
        return {"status": status, "message": message, "bidirectional": a.bidirectional, "directions": directions, "counts": counts, "conflicts": conflicts, "waited_ms": waited, "replication_lag_ms": rep["replication_lag_ms"], "now_ms": eng.now_ms}


# ----------------------------------------------------------------------------- logs
class LogsArgs(Args):
    service: str | None = None
    level: str | None = None
    since: str | None = None
    limit: int = Field(default=50, ge=1, le=10_000)
    filter: str | None = None


def logs_tail(ops: Any, a: LogsArgs) -> dict[str, Any]:
    eng = ops.engine
    expr = None
    if a.filter is not None:
        try:
            expr = logfilter.parse(a.filter)
        except logfilter.FilterError as exc:
            raise OpError(BAD_ARGUMENT, str(exc), "filter") from None
    min_level = None
    if a.level is not None:
        min_level = logfilter.LEVELS.get(a.level.upper())
        if min_level is None:
            raise OpError(BAD_ARGUMENT, f"unknown level {a.level!r} (use one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL)", "level")
    with eng.lock:
        known = set(eng.fleet.services) | {str(x.get("service")) for x in eng.fleet.logs}
        if a.service is not None and a.service not in known:
            raise OpError(BAD_ARGUMENT, f"unknown service {a.service!r} (known: {', '.join(sorted(known))})", "service")
        since = ops.time_ref(a.since, "since")
        records = list(eng.fleet.logs)
    if expr is not None:
        fields = set(logfilter.FLEET_LOG_FIELDS)
        for rec in records:
            fields.update(rec)
        fields -= {"ts_ms"}
        try:
            logfilter.check(expr, fields)
        except logfilter.FilterError as exc:
            raise OpError(BAD_ARGUMENT, str(exc), "filter") from None
    out = []
    scanned = 0
    for rec in reversed(records):
        scanned += 1
        if since is not None and rec["ts_ms"] < since:
            break
        if a.service is not None and rec.get("service") != a.service:
            continue
        if min_level is not None and logfilter.LEVELS.get(str(rec.get("level", "")).upper(), 0) < min_level:
            continue
        if expr is not None and not logfilter.matches(expr, rec):
            continue
        out.append(rec)
        if len(out) >= a.limit:
            break
    out.reverse()
    lines = [{"ts_ms": r["ts_ms"], "ts": iso_utc(r["ts_ms"]), "level": r.get("level"), "service": r.get("service"), "message": r.get("message"), "fields": {k: v for k, v in r.items() if k not in ("ts_ms", "level", "service", "message")}} for r in out]
    return {"lines": lines, "scanned": scanned, "kept": len(records), "oldest_ms": records[0]["ts_ms"] if records else None}


# ----------------------------------------------------------------------------- changes
class ChangedSinceArgs(Args):
    changed_since: str | None = None
    service: str | None = None


def flags_list(ops: Any, a: ChangedSinceArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        since = ops.time_ref(a.changed_since, "changed_since")
        names = [ops.service(a.service).name] if a.service else list(f.services)
        rows = []
        for n in names:
            s = f.services[n]
            for flag, on in sorted(s.feature_flags.items()):
                last = next((c for c in reversed(s.changes) if c.kind == "flag" and c.detail == flag), None)
                if since is not None and (last is None or last.at_ms < since):
                    continue
                rows.append({"service": n, "flag": flag, "enabled": on, "changed_at_ms": last.at_ms if last else None, "changed_by": last.actor if last else None, "previous": last.before if last else None})
        return {"now_ms": eng.now_ms, "since_ms": since, "flags": rows}


class RangeArgs(Args):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    service: str | None = None


def _version_at(s: Any, kind: str, t: int, current: int) -> int:
    """The version (config or schema) a service ran at time ``t``, from its change history."""
    changes = [c for c in s.changes if c.kind == kind and isinstance(c.after, int) and isinstance(c.before, int)]
    at = None
    for c in changes:
        if c.at_ms <= t:
            at = c.after
    if at is not None:
        return at
    later = [c for c in changes if c.at_ms > t]
    return later[0].before if later else current


def config_diff(ops: Any, a: RangeArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        t0 = ops.time_ref(a.from_, "from", eng.now_ms - 1_800_000)
        t1 = ops.time_ref(a.to, "to", eng.now_ms)
        if t0 > t1:
            raise OpError(BAD_ARGUMENT, f"--from ({iso_utc(t0)}) is after --to ({iso_utc(t1)})", "from")
        names = [ops.service(a.service).name] if a.service else list(f.services)
        out = []
        for n in names:
            s = f.services[n]
            changes = [c for c in s.changes if c.kind == "config" and t0 <= c.at_ms <= t1]
            v0 = _version_at(s, "config", t0, s.config_version)
            v1 = _version_at(s, "config", t1, s.config_version)
            c0 = s.config_versions.get(v0, {})
            c1 = s.config_versions.get(v1, {})
            keys = [{"key": k, "from": c0.get(k), "to": c1.get(k)} for k in sorted(set(c0) | set(c1)) if c0.get(k) != c1.get(k)]
            if not changes and not keys:
                continue
            out.append(
                {
                    "service": n,
                    "version_from": v0,
                    "version_to": v1,
                    "keys": keys,
                    "changes": [{"at_ms": c.at_ms, "at": iso_utc(c.at_ms), "from_version": c.before, "to_version": c.after, "detail": c.detail, "actor": c.actor} for c in changes],
                }
            )
        return {"from_ms": t0, "to_ms": t1, "services": out}


def _schema_doc(ops: Any, service: str, version: int) -> dict[str, Any] | None:
    v = ops.catalog.schema(service, version)
    if v is None:
        return None
    return {"version": v.version, "summary": v.summary, "endpoints": {k: {"required": list(e.required), "optional": list(e.optional)} for k, e in v.endpoints.items()}}


def _endpoint_diff(d0: dict[str, Any] | None, d1: dict[str, Any] | None) -> list[dict[str, Any]]:
    e0 = (d0 or {}).get("endpoints", {})
    e1 = (d1 or {}).get("endpoints", {})
    out = []
    for ep in sorted(set(e0) | set(e1)):
        a, b = e0.get(ep), e1.get(ep)
        if a == b:
            continue
        if a is None or b is None:
            out.append({"endpoint": ep, "change": "added" if a is None else "removed", "breaking": a is not None})
            continue
        req_added = sorted(set(b["required"]) - set(a["required"]))
        fields_removed = sorted((set(a["required"]) | set(a["optional"])) - (set(b["required"]) | set(b["optional"])))
        out.append(
            {
                "endpoint": ep,
                "change": "changed",
                "required_added": req_added,
                "required_dropped": sorted(set(a["required"]) - set(b["required"])),
                "fields_added": sorted((set(b["required"]) | set(b["optional"])) - (set(a["required"]) | set(a["optional"]))),
                "fields_removed": fields_removed,
                "breaking": bool(req_added or fields_removed),
            }
        )
    return out


def schema_diff(ops: Any, a: RangeArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        t0 = ops.time_ref(a.from_, "from", eng.now_ms - DAY_MS)
        t1 = ops.time_ref(a.to, "to", eng.now_ms)
        if t0 > t1:
            raise OpError(BAD_ARGUMENT, f"--from ({iso_utc(t0)}) is after --to ({iso_utc(t1)})", "from")
        names = [ops.service(a.service).name] if a.service else list(f.services)
        out = []
        for n in names:
            s = f.services[n]
            changes = [c for c in s.changes if c.kind == "schema" and t0 <= c.at_ms <= t1]
            v0 = _version_at(s, "schema", t0, s.schema_version)
            v1 = _version_at(s, "schema", t1, s.schema_version)
            if v0 == v1 and not changes:
                continue
            flags = sorted({flag for flag in s.feature_flags if any(flag in c.detail for c in changes)})
            out.append(
                {
                    "service": n,
                    "version_from": v0,
                    "version_to": v1,
                    "changes": [{"at_ms": c.at_ms, "at": iso_utc(c.at_ms), "detail": c.detail, "actor": c.actor} for c in changes],
                    "behind_flags": [{"flag": fl, "enabled": s.feature_flags[fl]} for fl in flags],
                    "endpoints": _endpoint_diff(_schema_doc(ops, n, v0), _schema_doc(ops, n, v1)),
                }
            )
        return {"from_ms": t0, "to_ms": t1, "services": out, "breaking": any(e["breaking"] for x in out for e in x["endpoints"])}


class SchemaDocArgs(Args):
    service: str | None = None
    latest: bool = True


def schema_document(ops: Any, a: SchemaDocArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        names = [ops.service(a.service).name] if a.service else [n for n in f.services if n in ops.catalog.schemas]
        docs = []
        for n in names:
            s = f.services[n]
            doc = _schema_doc(ops, n, s.schema_version)
            if doc is None:
                continue
            docs.append(dict(doc, service=n, running_version=s.schema_version, flags={k: v for k, v in s.feature_flags.items() if "schema" in k}))
        if not docs:
            raise OpError(NOT_FOUND, "no API schema is documented for " + (a.service or "any service") + " (runbooks/manual/api_schema.toml)")
        return {"now_ms": eng.now_ms, "schemas": docs}


# ----------------------------------------------------------------------------- database
def db_connections(ops: Any, a: NoArgs) -> dict[str, Any]:
    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        rows = []
        for s in f.services.values():
            for e in s.deps:
                db = e.dep
                if db.kind != "database":
                    continue
                size = db.connection_pool or 0
                hold_ms = db.p50 + e.extra_ms if db.up else 0.0
                busy = e.passed * hold_ms / 1000.0  # Little's law: calls/s x seconds each
                if s.pool_in_use > 0:
                    in_use = float(size)
                    waiting = e.calls * (e.breaker.policy.timeout_ms / 1000.0)
                    status = "EXHAUSTED"
                else:
                    in_use = min(float(size), busy)
                    waiting = max(0.0, busy - size)
                    status = "SATURATED" if size and in_use >= 0.9 * size else "OK"
                rows.append(
                    {
                        "service": s.name,
                        "database": db.name,
                        "pool_size": size,
                        "in_use": in_use,
                        "idle": max(0.0, size - in_use),
                        "waiting": waiting,
                        "utilization_pct": 100.0 * in_use / size if size else 0.0,
                        "hold_ms": hold_ms,
                        "status": status,
                    }
                )
        return {"now_ms": eng.now_ms, "pools": rows}


class SlowArgs(Args):
    since: str | None = None
    limit: int = Field(default=20, ge=1, le=1000)
    database: str | None = None


def db_queries_slow(ops: Any, a: SlowArgs) -> dict[str, Any]:
    from engine.mitigate.actuator import slow_queries

    eng = ops.engine
    f = eng.fleet
    with eng.lock:
        db = ops.database(a.database) if a.database else None
        since = ops.time_ref(a.since, "since")
        live = {q.query_id: q for q in slow_queries(f)}
        rows = []
        seen = dict(ops.history.slow_queries) if ops.history is not None else {}
        for qid, q in live.items():
            if qid not in seen:
                rows.append({"query_id": qid, "table": q.table, "plan": q.plan, "missing_index": q.missing_index, "caller": q.caller, "database": "database", "mean_ms": q.mean_ms, "worst_mean_ms": q.mean_ms, "calls_per_min": q.calls_per_min, "first_seen_ms": eng.now_ms, "last_seen_ms": eng.now_ms})
        for qid, sq in seen.items():
            rows.append({"query_id": qid, "table": sq.table, "plan": sq.plan, "missing_index": sq.missing_index, "caller": sq.caller, "database": sq.database, "mean_ms": sq.mean_ms, "worst_mean_ms": sq.worst_mean_ms, "calls_per_min": sq.calls_per_min, "first_seen_ms": sq.first_seen_ms, "last_seen_ms": sq.last_seen_ms})
        out = []
        for r in rows:
            if since is not None and r["last_seen_ms"] < since:
                continue
            if db is not None and r["database"] != db.name:
                continue
            dbs = f.services.get(r["database"])
            r["still_slow"] = r["query_id"] in live
            r["optimized"] = bool(dbs is not None and r["query_id"] in dbs.optimized_queries)
            r["index_exists"] = bool(dbs is not None and r["missing_index"] in dbs.indexes)
            out.append(r)
        out.sort(key=lambda r: (not r["still_slow"], -r["mean_ms"]))
        return {"now_ms": eng.now_ms, "since_ms": since, "queries": out[: a.limit], "total": len(out)}


class DatabaseArgs(Args):
    database: str | None = None
    schema_scan: bool = False


def db_indexes_usage(ops: Any, a: DatabaseArgs) -> dict[str, Any]:
    from engine.mitigate.actuator import slow_queries

    eng = ops.engine
    with eng.lock:
        db = ops.database(a.database)
        calls_per_min = db.in_rps * 60.0
        names = sorted(db.indexes)
        weights = {n: 1 + zlib.crc32(n.encode()) % 7 for n in names}
        total_w = sum(weights.values()) or 1
        served_by_new: dict[str, float] = {}
        if ops.history is not None:
            for sq in ops.history.slow_queries.values():
                if sq.missing_index in db.indexes:
                    served_by_new[sq.missing_index] = served_by_new.get(sq.missing_index, 0.0) + sq.calls_per_min
        rows = []
        for n in names:
            scans = served_by_new.get(n) if n in served_by_new else calls_per_min * 0.6 * weights[n] / total_w
            rows.append({"index": n, "status": "valid", "scans_per_min": scans, "pre_approved": n in db.pre_approved_indexes})
        for n, ready in sorted(db.pending_indexes.items()):
            rows.append({"index": n, "status": "building", "ready_at_ms": ready, "scans_per_min": 0.0, "pre_approved": n in db.pre_approved_indexes})
        seq = [{"query_id": q.query_id, "table": q.table, "plan": q.plan, "calls_per_min": q.calls_per_min} for q in slow_queries(eng.fleet) if q.caller in eng.fleet.services]
        return {"now_ms": eng.now_ms, "database": db.name, "indexes": rows, "sequential_scans": seq}


def db_indexes_missing(ops: Any, a: DatabaseArgs) -> dict[str, Any]:
    from engine.mitigate.actuator import slow_queries

    eng = ops.engine
    with eng.lock:
        db = ops.database(a.database)
        rows: dict[str, dict[str, Any]] = {}
        for q in slow_queries(eng.fleet):
            if q.missing_index in db.indexes:
                continue
            rows[q.missing_index] = {
                "index": q.missing_index,
                "table": q.table,
                "reason": f"slow query {q.query_id}: {q.plan} ({q.mean_ms:.0f} ms, {q.calls_per_min:.0f} calls/min from {q.caller})",
                "query_id": q.query_id,
                "pre_approved": q.missing_index in db.pre_approved_indexes,
                "building": q.missing_index in db.pending_indexes,
                "est_saving_ms": max(0.0, q.mean_ms - db.p50),
            }
        if a.schema_scan:
            for n in db.pre_approved_indexes:
                if n in db.indexes or n in rows:
                    continue
                rows[n] = {"index": n, "table": None, "reason": "schema scan: a pre-approved index that does not exist yet", "query_id": None, "pre_approved": True, "building": n in db.pending_indexes, "est_saving_ms": 0.0}
        return {"now_ms": eng.now_ms, "database": db.name, "missing": list(rows.values()), "schema_scan": a.schema_scan}


OPERATIONS: dict[str, tuple[type[Args], Any]] = {
    "metrics.get": (MetricsArgs, metrics_get),
    "circuits.status": (NoArgs, circuits_status),
    "services.health": (NoArgs, services_health),
    "governor.status": (GovernorArgs, governor_status),
    "replication.status": (NoArgs, replication_status),
    "replication.verify": (VerifyArgs, replication_verify),
    "logs.tail": (LogsArgs, logs_tail),
    "flags.list": (ChangedSinceArgs, flags_list),
    "config.diff": (RangeArgs, config_diff),
    "schema.diff": (RangeArgs, schema_diff),
    "schema.document": (SchemaDocArgs, schema_document),
    "db.connections": (NoArgs, db_connections),
    "db.queries.slow": (SlowArgs, db_queries_slow),
    "db.indexes.usage": (DatabaseArgs, db_indexes_usage),
    "db.indexes.missing": (DatabaseArgs, db_indexes_missing),
}
