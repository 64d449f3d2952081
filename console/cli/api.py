"""``ggen api schema``: API request-schema versions of the live engine's services."""
from __future__ import annotations

import click

from console.cli.common import TIME_REF, echo_json, safe_text
from console.cli.remote import Group, call, json_option, when


@click.group(cls=Group)
def api() -> None:
    """The services' API."""


@api.group(cls=Group)
def schema() -> None:
    """Request schemas: what changed, and the current document."""


@schema.command("diff")
@click.option("--from", "from_", type=TIME_REF, default="24h-ago", show_default=True, metavar="TIME")
@click.option("--to", type=TIME_REF, default="now", show_default=True, metavar="TIME")
@click.option("--service", metavar="S", help="Only this service.")
@json_option
def diff(from_: str, to: str, service: str | None, as_json: bool) -> None:
    """Schema versions at both ends of the window and what a client must change."""
    res = call("schema.diff", {"from": from_, "to": to, "service": service})
    if as_json:
        echo_json(res)
        return
    click.echo(f"API schema changes {when(res['from_ms'])} .. {when(res['to_ms'])}" + ("  BREAKING" if res["breaking"] else ""))
    if not res["services"]:
        click.echo("  no schema change in that window")
    for s in res["services"]:
        flags = ", ".join(f"{f['flag']} ({'on' if f['enabled'] else 'off'})" for f in s["behind_flags"])
        click.echo(f"{s['service']}: v{s['version_from']} -> v{s['version_to']}" + (f"  behind flag {flags}" if flags else ""))
        for c in s["changes"]:
            click.echo(f"  {c['at'][:19]}Z  {safe_text(c['detail'])}  (by {safe_text(c['actor'])})")
        for e in s["endpoints"]:
            tag = "BREAKING" if e["breaking"] else "compatible"
            if e["change"] != "changed":
                click.echo(f"  {safe_text(e['endpoint'])}: {e['change']} ({tag})")
                continue
            parts = []
            if e["required_added"]:
                parts.append("now required: " + ", ".join(e["required_added"]))
            if e["fields_removed"]:
                parts.append("removed: " + ", ".join(e["fields_removed"]))
            if e["fields_added"]:
                parts.append("added: " + ", ".join(e["fields_added"]))
            click.echo(f"  {safe_text(e['endpoint'])}: {'; '.join(parts) or 'changed'} ({tag})")


@schema.command("document")
@click.option("--latest", is_flag=True, default=True, help="The version each service runs now (the default).")
@click.option("--service", metavar="S", help="Only this service.")
@json_option
def document(latest: bool, service: str | None, as_json: bool) -> None:
    """Print the request schema each service runs now, for clients to adapt to."""
    res = call("schema.document", {"service": service, "latest": latest})
    if as_json:
        echo_json(res)
        return
    for d in res["schemas"]:
        flags = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in d["flags"].items())
        click.echo(f"# {d['service']} request schema v{d['version']}" + (f" (flags: {flags})" if flags else ""))
        click.echo(safe_text(d["summary"]))
        for ep, body in d["endpoints"].items():
            click.echo(f"  {safe_text(ep)}")
            click.echo(f"    required: {', '.join(body['required']) or '-'}")
            click.echo(f"    optional: {', '.join(body['optional']) or '-'}")
