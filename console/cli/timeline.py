"""`ggen timeline`: an incident's reconstructed timeline (receipts merged with logs, traces and metrics)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from console.cli.common import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, TIME_REF, data_dir, echo_json, fail, resolve_time, safe_text


def open_history(need_ledger: bool) -> tuple[Any, Any]:
    """The data directory's ledger (read-only) and trusted keys, or (None, None) when nothing
    was recorded and the caller can do without."""
    from engine.receipts.keys import KeyStore, KeyStoreError
    from engine.receipts.ledger import Ledger, LedgerCorrupt, LedgerNotFound

    dd = data_dir()
    try:
        ledger = Ledger(dd.ledger_path, readonly=True)
    except LedgerNotFound as exc:
        if need_ledger:
            fail(f"{exc}; an incident id needs the ledger of the data directory that recorded it (--data-dir)", EXIT_NOT_FOUND)
        return None, None
    except LedgerCorrupt as exc:
        fail(str(exc), EXIT_FAILED)
    anchors = None
    try:
        if KeyStore.exists(dd.keys_dir):
            anchors = KeyStore.open(dd.keys_dir).anchors()
    except KeyStoreError as exc:
        click.echo(f"ggen: warning: receipts cannot be verified: {safe_text(str(exc))}", err=True)
    return ledger, anchors


@click.command("timeline")
@click.option("--incident-id", default=None, metavar="ID", help="Incident (or receipt) id, or 8+ leading hex digits; the window comes from its receipts.")
@click.option("--from", "from_", type=TIME_REF, default=None, metavar="TIME", help="Window start: an ISO time, or 30m / 2h (ago).")
@click.option("--to", "to", type=TIME_REF, default=None, metavar="TIME", help="Window end (default with --from: now).")
@click.option("--service", default=None, metavar="NAME", help="Only evidence from this service (phases and ranking still use all).")
@click.option("--db", "db", type=click.Path(path_type=Path), default=None, help="Analyzer database (default: analyzer.duckdb in the data directory).")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to FILE instead of standard output.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def timeline(incident_id: str | None, from_: str | None, to: str | None, service: str | None, db: Path | None, fmt: str, output: Path | None, as_json: bool) -> None:
    """Reconstruct an incident's timeline: phases with metric snapshots, evidence lines traced to
    their file and line, span or receipt, the first anomaly, a ranked cause chain, validation,
    durations from the data against the receipts, and a chart of the main metric."""
    from analyzer.timeline import TimelineBadInput, TimelineError, TimelineNotFound, receipts_timeline, reconstruct_timeline
    from engine.clock import WallClock, iso_utc

    if incident_id is None and from_ is None:
        fail("give --incident-id ID, or a window with --from TIME [--to TIME]", EXIT_USAGE)
    if incident_id is not None and (from_ is not None or to is not None):
        fail("--incident-id takes its window from the receipts; leave out --from/--to", EXIT_USAGE)
    if to is not None and from_ is None:
        fail("--to needs --from", EXIT_USAGE)
    now = WallClock().now_ms()
    start = resolve_time(from_, now) if from_ is not None else None
    end = resolve_time(to, now) if to is not None else (now if from_ is not None else None)
    if start is not None and end is not None and end <= start:
        fail(f"--from {iso_utc(start)} is not before --to {iso_utc(end)}: the window is empty", EXIT_USAGE)
    ledger, anchors = open_history(need_ledger=incident_id is not None)
    db_path = db or data_dir().analyzer_db_path
    try:
        if incident_id is not None and ledger is not None:
            from analyzer.timeline.receipts import find_incident_id

            incident_id = find_incident_id(ledger, incident_id)  # an unknown id fails here, before any fallback
        try:
            tl = reconstruct_timeline(db_path, incident_id=incident_id, ledger=ledger, anchors=anchors, start_ms=start, end_ms=end, service=service)
        except TimelineNotFound as exc:
            # As `ggen pir create` does: an incident whose logs were never ingested (no database in
            # the data directory, or none of its window) still has its receipts. A --db named on
            # the command line that is not there stays an error: it is more likely a typo.
            if incident_id is None or ledger is None or (db is not None and not db.exists()):
                raise
            tl = receipts_timeline(ledger, incident_id, anchors)
            tl.notes.append(f"built from the receipts alone: {exc}")
            tl.warnings.append("no logs, traces or metrics for this incident: the timeline comes from its receipts alone")
    except TimelineNotFound as exc:
        fail(safe_text(str(exc)), EXIT_NOT_FOUND)
    except TimelineBadInput as exc:
        fail(safe_text(str(exc)), EXIT_USAGE)
    except TimelineError as exc:
        fail(safe_text(str(exc)), EXIT_FAILED)
    finally:
        if ledger is not None:
            ledger.close()
    for w in tl.warnings:
        click.echo(f"ggen: warning: {safe_text(w)}", err=True)
    if as_json:
        fmt = "json"
    if fmt == "json" and output is None:
        echo_json(tl.to_dict())
        return
    if fmt == "json":
        import orjson

        text = orjson.dumps(tl.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    else:
        text = safe_text(tl.render_markdown() if fmt == "md" else tl.render_table())
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"{output}: cannot write ({exc.strerror or exc})", EXIT_FAILED)
        click.echo(f"wrote {output}")
        return
    click.echo(text, nl=False)
