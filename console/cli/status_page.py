"""``ggen status-page``: render the status page, draft the next update from an incident's receipts,
publish an approved draft, and show component states and late updates.

Everything reads the signed ledger, so it works with or without a running engine.
"""
from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

import click

from console.cli.common import at_option, data_dir, echo_json, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE, fail, resolve_time, safe_text, TIME_REF


def _policy() -> Any:
    from engine.policy.loader import PolicyError
    from engine.statuspage import load_status_policy

    try:
        return load_status_policy()
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)


def _cadences() -> dict[str, int]:
    from engine.policy.bundle import load_policy

    return {name: lvl.status_update_every_s for name, lvl in load_policy().severity.levels.items()}


def _ledger() -> Any:
    from engine.receipts.ledger import Ledger, LedgerCorrupt, LedgerNotFound

    try:
        return Ledger(data_dir().ledger_path, readonly=True)
    except LedgerNotFound:
        return None
    except LedgerCorrupt as exc:
        fail(str(exc), 28)


def _state(view: str, at_ms: int, since_ms: int) -> Any:
    from engine.receipts import incidents_from_ledger
    from engine.statuspage import StatusStore, page_state

    ledger = _ledger()
    incidents = []
    if ledger is not None:
        try:
            incidents = [i for i in incidents_from_ledger(ledger, since_ms) if (i.detected_at_ms or 0) <= at_ms]
        finally:
            ledger.close()
    store = StatusStore(data_dir().root)
    updates = [u for u in store.published() if (u.published_at_ms or 0) <= at_ms]
    return page_state(incidents, updates, _policy(), view=view, now_ms=at_ms, cadence_s=_cadences())


@click.group("status-page")
def status_page() -> None:
    """Status page: render (HTML + JSON feed), draft and publish updates, cadence."""


VIEW_OPT = click.option("--view", type=click.Choice(("public", "internal")), default="public", show_default=True, help="public: customer-facing components, Sev1/Sev2 only; internal: everything.")
AT_OPT = click.option("--at", type=TIME_REF, default=None, help="Render as of this moment (ISO time); default: now.")
SINCE_OPT = click.option("--since", default="24h", show_default=True, metavar="DURATION", help="Resolved incidents this recent are listed (unresolved ones always are).")


def _since(at_ms: int, since: str) -> int:
    from engine.clock import parse_duration_ms

    try:
        return at_ms - parse_duration_ms(since)
    except ValueError as exc:
        fail(f"--since: {exc}", EXIT_USAGE)


@status_page.command("render")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Directory for index.html and feed.json (created if needed).")
@VIEW_OPT
@AT_OPT
@SINCE_OPT
@click.option("--title", default="Service status", show_default=True, help="Page title.")
def render(output: str, view: str, at: str | None, since: str, title: str) -> None:
    """Write the static page (self-contained HTML, no scripts) and its JSON feed."""
    import os

    import orjson

    from engine.statuspage import render_html

    at_ms = at_option(at)
    st = _state(view, at_ms, _since(at_ms, since))
    out = Path(output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in (("index.html", render_html(st, title=title).encode("utf-8")), ("feed.json", orjson.dumps(st.feed(), option=orjson.OPT_INDENT_2))):
            tmp = out / (name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, out / name)
    except OSError as exc:
        fail(f"{out}: cannot write ({exc.strerror or exc})", EXIT_FAILED)
    click.echo(f"wrote {out / 'index.html'} and {out / 'feed.json'} ({view}: {len(st.components)} components, {len(st.incidents)} incidents, overall {st.overall})")
    for w in st.warnings:
        click.echo(safe_text(f"warning: {w}"), err=True)


@status_page.command("status")
@VIEW_OPT
@AT_OPT
@SINCE_OPT
@click.option("--json", "as_json", is_flag=True, help="Print the feed as JSON.")
def status(view: str, at: str | None, since: str, as_json: bool) -> None:
    """Component states, active incidents and late updates. Exit 1 when an update is late."""
    at_ms = at_option(at)
    st = _state(view, at_ms, _since(at_ms, since))
    if as_json:
        echo_json(st.feed())
    else:
        click.echo(f"overall: {st.overall}")
        for c in st.components:
            click.echo(f"  {c['name']:<28} {c['label']}")
        for i in st.incidents:
            click.echo(safe_text(f"{i['severity']} {i['status']:<13} {i['incident_id']}  {i['title']}"))
        for w in st.warnings:
            click.echo(safe_text(f"LATE: {w}"))
    if st.warnings:
        sys.exit(EXIT_FAILED)


@status_page.command("draft")
@click.option("--incident-id", "incident_id", required=True, metavar="ID", help="The incident (a prefix is enough).")
@click.option("--audience", type=click.Choice(("public", "internal")), default="public", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Draft file (default: DATA_DIR/statuspage/drafts/...).")
@AT_OPT
@click.option("--json", "as_json", is_flag=True, help="Print the draft as JSON.")
def draft(incident_id: str, audience: str, output: str | None, at: str | None, as_json: bool) -> None:
    """Draft the next update from the incident's receipts, for a person to edit and publish."""
    from engine.policy.bundle import load_policy
    from engine.receipts.ledger import LedgerError
    from engine.statuspage import StatusStore, draft_update

    ledger = _ledger()
    if ledger is None:
        fail(f"no ledger at {data_dir().ledger_path} (nothing has been recorded yet)", EXIT_NOT_FOUND)
    try:
        try:
            iid = ledger.find_incident(incident_id)
        except LedgerError as exc:
            fail(f"--incident-id: {exc}", EXIT_NOT_FOUND)
        payloads = []
        for r in ledger.incident_receipts(iid):
            try:
                payloads.append(r.payload())
            except Exception:
                continue
    finally:
        ledger.close()
    if not payloads:
        fail(f"--incident-id: no readable receipts for {iid}", EXIT_NOT_FOUND)
    at_ms = at_option(at)
    policy = load_policy()
    sev = payloads[-1].get("severity") or "Sev4"
    every = policy.severity.levels[sev].status_update_every_s if sev in policy.severity.levels else 0
    itype = payloads[0].get("incident_type")
    target = policy.runbooks[itype].runbook.mttr_target_s if itype in policy.runbooks else None
    store = StatusStore(data_dir().root)
    upd = draft_update(payloads, _policy(), audience=audience, number=store.next_number(iid, audience), now_ms=at_ms, every_s=every, mttr_target_s=target)
    path = store.save_draft(upd, Path(output) if output else None)
    if as_json:
        echo_json(dict(upd.model_dump(), path=str(path)))
        return
    click.echo(safe_text(upd.message()))
    import shlex

    click.echo(f"\ndraft saved to {path}\nedit it, then publish with: ggen status-page publish --draft {shlex.quote(str(path))}")


@status_page.command("publish")
@click.option("--draft", "draft_file", required=True, type=click.Path(dir_okay=False), help="An approved draft (from `status-page draft`, edited).")
@click.option("--by", default=None, metavar="NAME", help="Who approves it (default: your user name).")
@AT_OPT
def publish(draft_file: str, by: str | None, at: str | None) -> None:
    """Publish an approved draft: recorded on the page, in the outbox, and as a signed receipt."""
    import uuid

    from engine.clock import parse_iso_ms
    from engine.escalation import Notification, Outbox
    from engine.policy.loader import PolicyError, validate
    from engine.statuspage import StatusStore, StatusUpdate, check_publishable
    from engine.statuspage.model import read_draft
    from engine.warroom import LedgerRecorder
    from engine.warroom.room import WarroomError

    p = Path(draft_file)
    try:
        upd = validate(p, read_draft(p), StatusUpdate)
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)
    policy = _policy()
    problems = check_publishable(upd, policy)
    if problems:
        fail(f"{p}: not published: " + "; ".join(problems), EXIT_REFUSED)
    dd = data_dir()
    store = StatusStore(dd.root)
    if any(u.number == upd.number and u.audience == upd.audience for u in store.published(upd.incident_id)):
        fail(f"{p}: update #{upd.number} ({upd.audience}) of {upd.incident_id} is already published; draft a new one", EXIT_REFUSED)
    who = by or getpass.getuser()
    now = at_option(at)
    nxt = None
    if upd.next_update:
        try:
            nxt = parse_iso_ms(upd.next_update.replace(" UTC", "Z").replace(" ", "T"))
        except ValueError:
            fail(f"{p}: field next_update: not a UTC time ({upd.next_update!r}); use 2026-01-25 14:35 UTC", EXIT_FAILED)
    upd = upd.model_copy(update={"published_at_ms": now, "published_by": who, "next_update_at_ms": nxt})
    try:
        rid = LedgerRecorder(dd.ledger_path, dd.keys_dir).record(
            upd.incident_id, who, f"status page update #{upd.number} ({upd.audience}) published: {upd.title}",
            {"status_page": {"number": upd.number, "audience": upd.audience, "status": upd.status, "next_update": upd.next_update, "message": upd.message()}},
        )
    except (WarroomError, Exception) as exc:  # the ledger must take it first: no unrecorded publication
        fail(f"not published: cannot record the receipt ({exc})", EXIT_FAILED)
    store.append(upd)
    Outbox(dd.outbox_path).put(Notification(f"urn:uuid:{uuid.uuid4()}", now, "status", "customers", f"{upd.audience} status page", upd.incident_id, upd.severity, upd.message(), "update", None))
    click.echo(f"published update #{upd.number} ({upd.audience}) of {upd.incident_id} (receipt {rid})")
    if upd.next_update:
        click.echo(f"next update due {upd.next_update}")
