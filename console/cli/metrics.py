"""``ggen metrics``: the live engine's metrics under the names the runbooks print."""
from __future__ import annotations

from typing import Any

import click

from console.cli.common import TIME_REF, echo_json, fail, safe_text
from console.cli.remote import Group, call, fmt, json_option, table, when


@click.group(cls=Group)
def metrics() -> None:
    """Metrics of the running engine (pubsub.subscription.lag, request_latency, error_rate, ...)."""


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [x.strip() for x in value.split(",") if x.strip()]
    return items or None


@metrics.command("get")
@click.option("--metric", metavar="NAME", help="A metric name as the runbooks print it (see `ggen metrics list`).")
@click.option("--service", metavar="S", help="Only this service (or tenant, circuit, region).")
@click.option("--metrics", "metric_list", metavar="a,b,c", help="Service metric groups: errors, latency, cpu, memory, traffic, replicas, health.")
@click.option("--quantiles", metavar="p50,p99,p99.9", help="Quantiles to show (for latency and size metrics).")
@click.option("--grouped-by", metavar="KEY", help="Split by a key; error_rate supports error_code.")
@click.option("--since", type=TIME_REF, metavar="TIME", help="Summarise the window since then: 5m, 24h, 30m-ago, an ISO time.")
@click.option("--aggregation", type=click.Choice(["minute", "hourly", "daily"]), help="Bucket the window (averages and peaks).")
@json_option
def get(metric: str | None, service: str | None, metric_list: str | None, quantiles: str | None, grouped_by: str | None, since: str | None, aggregation: str | None, as_json: bool) -> None:
    """Show a metric now, or over a window with --since (min, average, max)."""
    if metric is None and metric_list is None:
        fail("--metric: name a metric (see `ggen metrics list`) or give --metrics errors,latency,cpu,memory", 2)
    res = call(
        "metrics.get",
        {"metric": metric, "service": service, "metrics": _csv(metric_list), "quantiles": _csv(quantiles), "grouped_by": grouped_by, "since": since, "aggregation": aggregation},
    )
    if as_json:
        echo_json(res)
        return
    render(res)


def render(res: dict[str, Any]) -> None:
    cols = res["columns"]
    click.echo(f"{safe_text(res['metric'])}: {safe_text(res['description'])}  (engine time {when(res['now_ms'])})")
    windowed = any(r.get("window") for r in res["rows"])
    if not windowed:
        table(["name"] + cols, [[r["name"]] + [r["now"][c] for c in cols] for r in res["rows"]])
    else:
        rows = []
        for r in res["rows"]:
            w = r.get("window")
            for c in cols:
                st = (w or {}).get("stats", {}).get(c, {})
                rows.append([r["name"], c, r["now"][c], st.get("min"), st.get("avg"), st.get("max"), w.get("samples") if w else 0])
        w0 = next(r["window"] for r in res["rows"] if r.get("window"))
        click.echo(f"window {when(w0['from_ms'])} .. {when(w0['to_ms'])} ({w0['resolution']} samples)")
        table(["name", "metric", "now", "min", "avg", "max", "samples"], rows)
    for r in res["rows"]:
        if r.get("buckets"):
            click.echo(f"{safe_text(r['name'])} by {res['aggregation'] or 'bucket'}:")
            table(["start", "minutes"] + [f"{c} avg" for c in cols] + [f"{c} max" for c in cols], [[when(b["start_ms"]), b["minutes"]] + [b["avg"][c] for c in cols] + [b["max"][c] for c in cols] for b in r["buckets"]])
    notes = {r["note"] for r in res["rows"] if r.get("note")}
    for n in sorted(notes):
        click.echo(f"note: {safe_text(n)}")
    if "groups" in res:
        click.echo("by error code:")
        if res["groups"]:
            table(["service", "code", "class", "per_min", "pct_of_requests"], [[g["service"], g["error_code"], g["class"], g["per_min"], fmt(g["pct_of_requests"], 2)] for g in res["groups"]])
        else:
            click.echo("  (no failed requests)")


@metrics.command("list")
@json_option
def list_(as_json: bool) -> None:
    """The metric names `ggen metrics get --metric` knows, with their aliases (no engine needed)."""
    from engine.control.catalog import load_catalog
    from engine.policy.loader import PolicyError

    try:
        cat = load_catalog()
    except PolicyError as exc:
        fail(str(exc))
    rows = [{"name": m.name, "aliases": m.aliases, "entity": m.entity, "columns": m.columns, "quantiles": list(m.quantiles), "group_by": m.group_by, "description": m.description} for m in cat.metrics]
    if as_json:
        echo_json({"metrics": rows, "groups": cat.groups})
        return
    table(["name", "entity", "aliases"], [[r["name"], r["entity"], ", ".join(r["aliases"]) or "-"] for r in rows])
    click.echo("service groups for --metrics: " + ", ".join(sorted(cat.groups)))
