"""``ggen db``: the live engine's database: connection pools, slow queries, indexes."""
from __future__ import annotations

import click

from console.cli.common import TIME_REF, echo_json, safe_text
from console.cli.remote import Group, ago, apply, call, change_options, json_option, table


@click.group(cls=Group)
def db() -> None:
    """Database diagnostics and fixes (pools, slow queries, indexes)."""


@db.group(cls=Group)
def connections() -> None:
    """Connection pools."""


@connections.command("status")
@json_option
def connections_status(as_json: bool) -> None:
    """Each service's pool to each database: size, in use, waiting (EXHAUSTED means callers time out)."""
    res = call("db.connections")
    if as_json:
        echo_json(res)
        return
    table(["service", "database", "pool", "in_use", "idle", "waiting", "util_pct", "hold_ms", "status"], [[p["service"], p["database"], p["pool_size"], p["in_use"], p["idle"], p["waiting"], p["utilization_pct"], p["hold_ms"], p["status"]] for p in res["pools"]])


@db.group(cls=Group)
def queries() -> None:
    """Queries: the slow-query log, and rewriting one."""


@queries.command("slow")
@click.option("--since", type=TIME_REF, metavar="TIME", help="Only queries seen slow since then (5m, 30m-ago).")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=20, show_default=True)
@click.option("--database", metavar="NAME", help="Only this database (prod = the production database).")
@json_option
def queries_slow(since: str | None, limit: int, database: str | None, as_json: bool) -> None:
    """Slow queries: id, plan, mean time, calls, and the index they miss."""
    res = call("db.queries.slow", {"since": since, "limit": limit, "database": database})
    if as_json:
        echo_json(res)
        return
    now = res["now_ms"]
    if not res["queries"]:
        click.echo("no slow queries" + (" in that window" if since else ""))
        return
    rows = [[q["query_id"], q["database"], q["table"], q["plan"], q["mean_ms"], q["calls_per_min"], q["caller"], q["missing_index"], "slow" if q["still_slow"] else "fixed", ago(q["last_seen_ms"], now)] for q in res["queries"]]
    table(["query_id", "database", "table", "plan", "mean_ms", "calls_min", "caller", "missing_index", "now", "last_seen"], rows)


@queries.command("optimize")
@click.option("--query-id", required=True, metavar="ID", help="A query id from `ggen db queries slow`.")
@click.option("--database", metavar="NAME")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def queries_optimize(query_id: str, database: str | None, reason: str, **opts) -> None:
    """Rewrite a slow query (narrower select, bounded scan); the missing index still matters more."""
    apply("db.queries.optimize", {"query_id": query_id, "database": database}, reason=reason, **opts)


@db.group(cls=Group)
def indexes() -> None:
    """Indexes: usage, what is missing, create, drop."""


@indexes.command("usage")
@click.option("--database", metavar="NAME", help="The database (prod = the production database).")
@json_option
def indexes_usage(database: str | None, as_json: bool) -> None:
    """Scans per minute of each index, and the queries doing sequential scans."""
    res = call("db.indexes.usage", {"database": database})
    if as_json:
        echo_json(res)
        return
    click.echo(f"database {res['database']}")
    table(["index", "status", "scans_min", "pre_approved"], [[i["index"], i["status"], i["scans_per_min"], i["pre_approved"]] for i in res["indexes"]])
    for s in res["sequential_scans"]:
        click.echo(f"sequential scan: {safe_text(s['plan'])} by {s['query_id']} ({s['calls_per_min']:.0f} calls/min)")


@indexes.command("missing")
@click.option("--schema-scan", is_flag=True, help="Also list pre-approved indexes the schema lacks.")
@click.option("--database", metavar="NAME")
@json_option
def indexes_missing(schema_scan: bool, database: str | None, as_json: bool) -> None:
    """Indexes that slow queries need (and, with --schema-scan, other candidates)."""
    res = call("db.indexes.missing", {"database": database, "schema_scan": schema_scan})
    if as_json:
        echo_json(res)
        return
    if not res["missing"]:
        click.echo(f"no missing index on {res['database']}")
        return
    table(["index", "table", "pre_approved", "building", "saving_ms", "reason"], [[m["index"], m["table"], m["pre_approved"], m["building"], m["est_saving_ms"], m["reason"]] for m in res["missing"]])


@indexes.command("create")
@click.option("--index-name", required=True, metavar="NAME")
@click.option("--database", metavar="NAME")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def indexes_create(index_name: str, database: str | None, reason: str, **opts) -> None:
    """Build a pre-approved index concurrently (no table lock), then ANALYZE."""
    apply("db.indexes.create", {"index_name": index_name, "database": database}, reason=reason, **opts)


@indexes.command("drop")
@click.option("--index-name", required=True, metavar="NAME")
@click.option("--database", metavar="NAME")
@click.option("--reason", default="", metavar="TEXT", help="Why (recorded).")
@change_options
def indexes_drop(index_name: str, database: str | None, reason: str, **opts) -> None:
    """Drop an index (the rollback of create)."""
    apply("db.indexes.drop", {"index_name": index_name, "database": database}, reason=reason, **opts)
