"""``ggen logs tail``: the live engine's fleet log, or an analyzer database's ``events`` table.

``--filter`` takes the runbooks' forms (``status_code >= 500``, ``status_code >= 400 AND
status_code < 500``, a bare word such as ``validation_error``); it is parsed by
:mod:`engine.control.logfilter` and never passed on as SQL text.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from console.cli.common import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, TIME_REF, echo_json, fail, safe_text
from console.cli.remote import Group, call, json_option

SHOWN_FIELDS = ("status_code", "dependency", "account_id", "region", "error_type", "revision", "config_version", "incident_id", "reason")


@click.group(cls=Group)
def logs() -> None:
    """Logs of the running engine's fleet, or of an ingested incident (--db)."""


@logs.command("tail")
@click.option("--service", metavar="S", help="Only this service.")
@click.option("--level", metavar="LEVEL", help="At least this level: DEBUG, INFO, WARN, ERROR, FATAL.")
@click.option("--since", type=TIME_REF, metavar="TIME", help="Only lines since then (5m, 30m-ago, an ISO time). With --db, durations count back from the last event.")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=50, show_default=True, help="The last N matching lines.")
@click.option("--filter", "filter_text", metavar="EXPR", help="e.g. 'status_code >= 500', 'status_code >= 400 AND status_code < 500', validation_error.")
@click.option("--db", "db_path", type=click.Path(), metavar="FILE|DIR", help="Read an analyzer database (its events table), or a Parquet dataset from `ggen ingest --parquet-out`, instead of the live engine; no engine needed.")
@json_option
def tail(service: str | None, level: str | None, since: str | None, limit: int, filter_text: str | None, db_path: str | None, as_json: bool) -> None:
    """The last matching log lines, oldest first."""
    from engine.control import logfilter

    if filter_text is not None:
        try:
            logfilter.check(logfilter.parse(filter_text))  # the values; the engine (or --db) knows the fields
        except logfilter.FilterError as exc:
            fail(f"--filter: {exc}", EXIT_USAGE)
    if level is not None and level.upper() not in logfilter.LEVELS:
        fail(f"--level: unknown level {level!r} (use TRACE, DEBUG, INFO, WARN, ERROR or FATAL)", EXIT_USAGE)
    if db_path is not None:
        lines = _from_db(Path(db_path), service, level, since, limit, filter_text)
        res: dict[str, Any] = {"source": str(Path(db_path).resolve()), "lines": lines}
    else:
        res = call("logs.tail", {"service": service, "level": level, "since": since, "limit": limit, "filter": filter_text})
        res["source"] = "engine"
    if as_json:
        echo_json(res)
        return
    for ln in res["lines"]:
        fields = ln.get("fields") or {}
        msg = str(ln.get("message") or "")
        shown = [k for k in SHOWN_FIELDS if k in fields and not (k == "status_code" and str(fields[k]) in msg)]
        extra = " ".join(f"{k}={safe_text(fields[k])}" for k in shown)
        click.echo(f"{ln['ts'][:23]}Z {str(ln.get('level') or '-'):5} {safe_text(ln.get('service') or '-'):14} {safe_text(msg)}" + (f"  [{extra}]" if extra else ""))
    if not res["lines"]:
        click.echo("(no matching lines)", err=True)


def _from_db(path: Path, service: str | None, level: str | None, since: str | None, limit: int, filter_text: str | None) -> list[dict[str, Any]]:
    import duckdb
    import orjson

    from engine.clock import iso_utc, parse_time_ref
    from engine.control import logfilter

    if not path.exists():
        fail(f"--db: no analyzer database at {path}", EXIT_NOT_FOUND)
    try:
        if path.is_dir():
            from analyzer.ingest.parquet import is_parquet_dataset, open_parquet_dataset

            if not is_parquet_dataset(path):
                fail(f"--db: {path} is a directory, not a Parquet dataset from ggen ingest --parquet-out", EXIT_FAILED)
            con = open_parquet_dataset(path)
        else:
            con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        fail(f"--db: cannot open {path}: {str(exc).splitlines()[0]}", EXIT_FAILED)
    try:
        con.execute("SET TimeZone = 'UTC'")
        has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'events'").fetchone()
        if not has or not has[0]:
            fail(f"--db: {path} has no events table (ingest logs first with ggen ingest)", EXIT_FAILED)
        where = ["ts IS NOT NULL"]
        params: list[Any] = []
        if since is not None:
            last = con.execute("SELECT epoch_ms(max(ts)) FROM events").fetchone()
            ref = int(last[0]) if last and last[0] is not None else 0
            try:
                since_ms = parse_time_ref(since, ref)
            except ValueError as exc:
                fail(f"--since: {exc}", EXIT_USAGE)
            where.append("epoch_ms(ts) >= ?")
            params.append(since_ms)
        if service is not None:
            where.append("service = ?")
            params.append(service)
        if level is not None:
            cond, p = logfilter.to_sql(logfilter.Compare("level", ">=", level.upper()))
            where.append(cond)
            params += p
        if filter_text is not None:
            expr = logfilter.parse(filter_text)
            for c in logfilter.compares(expr):
                if c.field in logfilter.COLUMN_FIELDS:
                    continue
                seen = con.execute("SELECT 1 FROM events WHERE json_extract(attrs, ?) IS NOT NULL LIMIT 1", ["$." + ".".join(f'"{x}"' for x in c.field.split("."))]).fetchone()
                if not seen:
                    fail(f"--filter: unknown field {c.field!r}: no event in {path} carries it", EXIT_USAGE)
            cond, p = logfilter.to_sql(expr)
            where.append(cond)
            params += p
        sql = f"SELECT epoch_ms(ts), level, service, message, CAST(attrs AS VARCHAR) FROM events WHERE {' AND '.join(where)} ORDER BY ts DESC LIMIT ?"
        rows = con.execute(sql, params + [limit]).fetchall()
    except duckdb.Error as exc:
        fail(f"--db: query failed on {path}: {str(exc).splitlines()[0]}", EXIT_FAILED)
    finally:
        con.close()
    out = []
    for ts, lvl, svc, msg, attrs in reversed(rows):
        try:
            fields = orjson.loads(attrs) if attrs else {}
        except orjson.JSONDecodeError:
            fields = {"attrs": attrs}
        out.append({"ts_ms": int(ts), "ts": iso_utc(int(ts)), "level": lvl, "service": svc, "message": msg, "fields": fields if isinstance(fields, dict) else {"attrs": fields}})
    return out
