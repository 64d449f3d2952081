"""``ggen incidents``: incident history from the signed ledger (list, show, export, verify).

Everything here reads the ledger file, so it works without a running engine and while one is
writing. Other groups may add sub-commands (``warroom`` ...) from their own modules by adding
``"name": "module:attribute"`` to :data:`EXTRA_COMMANDS`; they are imported on first use.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from console.cli.common import data_dir, echo_json, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, fail, resolve_time, safe_text, TIME_REF, wall_now_ms

# Sub-commands contributed by other modules: name -> "module:attribute" (a click command).
EXTRA_COMMANDS: dict[str, str] = {
    "warroom": "console.cli.warroom:warroom",
    "ack": "console.cli.mitigation:ack",  # acknowledge on the live engine (the console's `a` key)
}

SEVERITIES = ("Sev1", "Sev2", "Sev3", "Sev4")
STATUSES = ("open", "resolved", "escalated")
TRUSTED_CHECKPOINT_FILE = "trusted-checkpoint"


class IncidentsGroup(click.Group):
    """A click group that also serves the sub-commands listed in EXTRA_COMMANDS, lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(EXTRA_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        target = EXTRA_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=IncidentsGroup)
def incidents() -> None:
    """Incidents and their signed receipts: list, show, export, verify."""


# -- shared helpers -------------------------------------------------------------------------------
def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    try:
        return resolve_time(since, wall_now_ms())
    except ValueError as exc:
        fail(f"--since: {exc}", EXIT_USAGE)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _text(value: object) -> Any:
    """Text from receipts, shown literally (no Rich markup, no live escape codes)."""
    from rich.text import Text

    return Text("" if value is None else safe_text(value))


def _t(ms: int | None) -> str:
    if ms is None:
        return "-"
    from engine.clock import iso_utc

    s = iso_utc(ms)
    return s[:10] + " " + s[11:19] + "Z"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = ms // 1000
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _open_ledger(missing_ok: bool = False) -> Any:
    """The ledger, read-only. None (if ``missing_ok``) when nothing was recorded yet."""
    from engine.receipts.ledger import Ledger, LedgerCorrupt, LedgerNotFound

    dd = data_dir()
    try:
        return Ledger(dd.ledger_path, readonly=True)
    except LedgerNotFound as exc:
        if missing_ok:
            return None
        fail(str(exc), EXIT_NOT_FOUND)
    except LedgerCorrupt as exc:
        from engine.receipts.verify import FailureKind

        fail(str(exc), FailureKind.LEDGER_UNREADABLE.code)


def _anchors(public_key: str | None) -> Any:
    """Trusted keys: a verifier-key file, else the local key store's genesis key (may be empty)."""
    from engine.receipts.keys import KeyStore, KeyStoreError, TrustSet, load_public_keys

    try:
        if public_key is not None:
            return TrustSet(load_public_keys(Path(public_key)))
        keys_dir = data_dir().keys_dir
        if KeyStore.exists(keys_dir):
            return KeyStore.open(keys_dir).anchors()
    except KeyStoreError as exc:
        from engine.receipts.verify import FailureKind

        fail(str(exc), FailureKind.NO_TRUSTED_KEY.code)
    return TrustSet()


def _pinned(path: str | None, default: bool) -> bytes | None:
    from engine.receipts.export import read_checkpoint_file
    from engine.receipts.note import NoteError
    from engine.receipts.verify import FailureKind

    bad = FailureKind.CHECKPOINT_MALFORMED.code
    if path is None:
        if not default:
            return None
        p = data_dir().root / TRUSTED_CHECKPOINT_FILE
        if not p.exists():
            return None
    else:
        p = Path(path)
    try:
        return read_checkpoint_file(p.read_bytes())
    except OSError as exc:
        fail(f"{p}: cannot read the trusted checkpoint ({exc.strerror or exc})", bad)
    except NoteError as exc:
        fail(f"{p}: {exc}", bad)


def _not_found(exc: Exception) -> NoReturn:
    from engine.receipts.ledger import AmbiguousId

    fail(str(exc), EXIT_USAGE if isinstance(exc, AmbiguousId) else EXIT_NOT_FOUND)


# -- list -------------------------------------------------------------------------------------------
@incidents.command("list")
@click.option("--since", type=TIME_REF, default=None, help="Only incidents active since then (30m, 24h, 7d, or an ISO date); unresolved ones always show.")
@click.option("--severity", type=click.Choice(SEVERITIES, case_sensitive=False), default=None, help="Only incidents whose highest severity is this.")
@click.option("--status", type=click.Choice(STATUSES, case_sensitive=False), default=None, help="Only incidents in this state.")
@click.option("--type", "incident_type", default=None, metavar="TYPE", help="Only incidents of this type (e.g. queue_backlog_overflow).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_incidents(since: str | None, severity: str | None, status: str | None, incident_type: str | None, as_json: bool) -> None:
    """List incidents recorded in the ledger, newest first."""
    from engine.receipts.summary import incidents_from_ledger

    since_ms = _since_ms(since)
    ledger = _open_ledger(missing_ok=True)
    rows = [] if ledger is None else incidents_from_ledger(ledger, since_ms)
    recorded = len(rows)
    if severity:
        rows = [s for s in rows if (s.severity or "").lower() == severity.lower()]
    if status:
        rows = [s for s in rows if s.status == status.lower()]
    if incident_type:
        rows = [s for s in rows if s.incident_type == incident_type]
    rows.sort(key=lambda s: s.detected_at_ms or 0, reverse=True)
    if as_json:
        echo_json([s.to_json() for s in rows])
        return
    console = _console()
    if not rows:
        window = f" since {_t(since_ms)}" if since_ms is not None else ""
        filters = ", ".join(f"{k} {v}" for k, v in (("severity", severity), ("status", status), ("type", incident_type)) if v)
        if recorded and filters:
            console.print(f"none of the {recorded} incident(s){window} in the ledger match {filters}")
        else:
            console.print(f"no incidents{window} in the ledger")
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} incident(s)", title_justify="left", header_style="bold")
    for col in ("incident", "type", "sev", "now", "status", "service", "region", "detected", "MTTR", "receipts"):
        table.add_column(col, no_wrap=col in ("incident", "detected"))
    for s in rows:
        table.add_row(
            _text(s.incident_id.removeprefix("urn:uuid:")[:13]),
            _text(s.incident_type),
            _text(s.severity or "-"),
            _text(s.current_severity or "-"),
            _text(_status(s)),
            _text(s.service or "-"),
            _text(s.region or "-"),
            _t(s.detected_at_ms),
            _duration(s.mttr_ms),
            str(s.receipt_count),
        )
    console.print(table)


def _status(s: Any) -> str:
    """The incident's status, marked when no engine watches it any more."""
    return f"{s.status}, unwatched" if s.unwatched_since_ms is not None else s.status


# -- show -------------------------------------------------------------------------------------------
@incidents.command("show")
@click.argument("incident_id", metavar="ID")
@click.option("--public-key", type=click.Path(dir_okay=False), default=None, help="Verify with this verifier-key file instead of the local keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show(incident_id: str, public_key: str | None, as_json: bool) -> None:
    """Show one incident (ID: incident or receipt id, or 8+ leading hex digits), its receipts,
    and whether each verifies."""
    from engine.receipts.ledger import LedgerError
    from engine.receipts.merkle import leaf_hash
    from engine.receipts.summary import summarize_incidents
    from engine.receipts.verify import time_ms, verify_ledger

    ledger = _open_ledger()
    try:
        iid = ledger.find_incident(incident_id)
    except LedgerError as exc:
        _not_found(exc)
    receipts = ledger.incident_receipts(iid)
    # every field shown comes from the signed payload (or the envelope bytes), never from the
    # ledger's unsigned index columns: verification says whether the payload can be trusted
    payloads: list[dict[str, Any]] = []
    for rec in receipts:
        try:
            payloads.append(rec.payload())
        except Exception:
            payloads.append({"incident_id": iid})

    def observed(p: dict[str, Any]) -> str:
        try:
            return _t(time_ms(p["observed_at"]))
        except (KeyError, TypeError, ValueError):
            return "-"

    summary = summarize_incidents(payloads)[0]
    anchors = _anchors(public_key)
    report = verify_ledger(ledger, anchors, receipt_seqs=[r.seq for r in receipts], scope="incident", pinned=_pinned(None, True))
    general = [f for f in report.failures if f.seq is None]
    if as_json:
        echo_json(
            {
                "incident": summary.to_json(),
                "receipts": [
                    {
                        "seq": rec.seq,
                        "receipt_id": p.get("receipt_id"),
                        "kind": p.get("kind"),
                        "leaf_sha256": leaf_hash(rec.envelope).hex(),
                        "verified": not report.failures_for(rec.seq) and not general,
                        "failures": [f.to_json() for f in report.failures_for(rec.seq)],
                        "payload": p,
                    }
                    for rec, p in zip(receipts, payloads)
                ],
                "verification": report.to_json(),
            }
        )
        sys.exit(0)
    from rich.table import Table

    console = _console()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for label, value in (
        ("incident", summary.incident_id),
        ("type", summary.incident_type),
        ("severity", f"{summary.severity or '-'} (highest), {summary.current_severity or '-'} (now)"),
        ("status", _status(summary) + (f" since {_t(summary.unwatched_since_ms)}: the engine watching it stopped" if summary.unwatched_since_ms is not None else "")),
        ("service", f"{summary.service or '-'} in {summary.region or '-'}"),
        ("summary", summary.summary),
        ("detected", _t(summary.detected_at_ms)),
        ("recovered", _t(summary.recovered_at_ms)),
        ("resolved", _t(summary.resolved_at_ms)),
        ("MTTR", _duration(summary.mttr_ms)),
    ):
        head.add_row(label, _text(value))
    console.print(head)
    table = Table(title=f"{len(receipts)} receipt(s)", title_justify="left", header_style="bold")
    for col in ("seq", "observed", "kind", "actor", "sev", "receipt", "verified"):
        table.add_column(col, no_wrap=col in ("observed", "receipt"))
    for rec, p in zip(receipts, payloads):
        fails = report.failures_for(rec.seq) + general
        if not anchors:
            state = _text("unverified (no trusted key)")
        elif fails:
            state = _text("FAILED " + fails[0].kind.slug)
            state.stylize("bold red")
        else:
            state = _text("ok")
            state.stylize("green")
        table.add_row(
            str(rec.seq),
            observed(p),
            _text(p.get("kind") or "(unreadable)"),
            _text(p.get("actor", "-")),
            _text(p.get("severity") or "-"),
            _text(str(p.get("receipt_id") or "-").removeprefix("urn:uuid:")),
            state,
        )
    console.print(table)
    for f in report.failures:
        console.print(_text("  " + f.line()))


# -- export -------------------------------------------------------------------------------------------
@incidents.command("export")
@click.option("--format", "fmt", type=click.Choice(("json", "jsonl", "csv")), default="json", show_default=True, help="json/jsonl carry proofs and verify offline; csv is for spreadsheets.")
@click.option("--since", type=TIME_REF, default=None, help="Incidents active since then (30m, 24h, 7d, ISO date); default: everything.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help="Write here instead of stdout.")
@click.option("--from-checkpoint", type=click.Path(exists=True, dir_okay=False), default=None, help="Prove consistency from this checkpoint (a note or an earlier export) instead of the previous export's.")
def export(fmt: str, since: str | None, output: str | None, from_checkpoint: str | None) -> None:
    """Export receipts with their checkpoint and proofs, verifiable with only the public key."""
    from engine.receipts.export import ExportError, build_export, render_export
    from engine.receipts.keys import KeyStore, KeyStoreError
    from engine.receipts.ledger import Ledger, LedgerError

    since_ms = _since_ms(since)
    dd = data_dir()
    if not dd.ledger_path.exists():
        fail(f"no ledger at {dd.ledger_path} (nothing has been recorded yet)", EXIT_NOT_FOUND)
    prior = _pinned(from_checkpoint, False) if from_checkpoint else None
    try:
        keys = KeyStore.open(dd.keys_dir)
        ledger = Ledger.open(dd.ledger_path, keys)
        bundle = build_export(ledger, keys, since_ms=since_ms, now_ms=wall_now_ms(), from_checkpoint=prior)
        data = render_export(bundle, fmt)
    except (ExportError, KeyStoreError, LedgerError) as exc:
        fail(str(exc), EXIT_FAILED)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    tmp = Path(output).with_name(f".{Path(output).name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, output)
    except OSError as exc:
        fail(f"{output}: cannot write ({exc.strerror or exc})", EXIT_FAILED)
    click.echo(f"exported {bundle.header['count']} receipt(s) to {output} ({fmt})", err=True)


# -- verify -------------------------------------------------------------------------------------------
class _VerifyCommand(click.Command):
    """Prints the exit-code table (engine.receipts.verify.FailureKind) after the options."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from engine.receipts.verify import FailureKind

        rows = [("0", "ok: everything checked verifies"), ("2", "usage error (bad flags, ambiguous id prefix)"), ("4", "no such receipt or incident")]
        rows += [(str(k.code), f"{k.slug}: {k.meaning}") for k in FailureKind]
        with formatter.section("Exit codes"):
            formatter.write_dl(rows, col_max=4)


@incidents.command("verify", cls=_VerifyCommand)
@click.option("--receipt-id", default=None, metavar="ID", help="Verify one receipt (urn:uuid:..., a UUID, or 8+ leading hex digits).")
@click.option("--incident-id", default=None, metavar="ID", help="Verify every receipt of one incident.")
@click.option("--all", "all_", is_flag=True, help="Verify the whole ledger.")
@click.option("--export", "export_file", type=click.Path(dir_okay=False), default=None, help="Verify an export file offline.")
@click.option("--public-key", type=click.Path(dir_okay=False), default=None, help="Verifier-key file (from `ggen keys export-public`); default: the local keys.")
@click.option("--trusted-checkpoint", type=click.Path(dir_okay=False), default=None, help="A pinned checkpoint (note or earlier export) the log must extend; default: DATA_DIR/trusted-checkpoint if present.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Processes for signature checks (default: all cores, at most 8).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def verify(
    receipt_id: str | None,
    incident_id: str | None,
    all_: bool,
    export_file: str | None,
    public_key: str | None,
    trusted_checkpoint: str | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Check signatures, key windows, Merkle inclusion, consistency with the pinned checkpoint,
    the prev chain, parents and incident order. The first failure is reported in one line and
    sets a distinct exit code."""
    from engine.receipts.ledger import LedgerError
    from engine.receipts.verify import FailureKind, VerifyReport, verify_ledger

    modes = [m for m, on in (("--receipt-id", receipt_id), ("--incident-id", incident_id), ("--all", all_), ("--export", export_file)) if on]
    if len(modes) != 1:
        fail("give exactly one of --receipt-id ID, --incident-id ID, --all, --export FILE" + (f" (got {' '.join(modes)})" if modes else ""), EXIT_USAGE)
    report: VerifyReport
    if export_file is not None:
        from engine.receipts.export import verify_export

        try:
            data = Path(export_file).read_bytes()
        except OSError as exc:
            fail(f"{export_file}: cannot read ({exc.strerror or exc})", FailureKind.EXPORT_MALFORMED.code)
        report = verify_export(data, _anchors(public_key), _pinned(trusted_checkpoint, False), workers=workers)
        scope = f"export {export_file}"
    else:
        dd = data_dir()
        if not dd.ledger_path.exists():
            fail(f"no ledger at {dd.ledger_path} (nothing has been recorded yet)", FailureKind.LEDGER_UNREADABLE.code)
        ledger = _open_ledger()
        anchors = _anchors(public_key)
        pinned = _pinned(trusted_checkpoint, True)
        if all_:
            report = verify_ledger(ledger, anchors, pinned=pinned, workers=workers)
            scope = "ledger"
        else:
            try:
                if receipt_id is not None:
                    rec = ledger.find_receipt(receipt_id)
                    seqs, scope = [rec.seq], f"receipt {rec.receipt_id}"
                else:
                    iid = ledger.find_incident(incident_id or "")
                    seqs, scope = [r.seq for r in ledger.incident_receipts(iid)], f"incident {iid}"
            except LedgerError as exc:
                _not_found(exc)
            report = verify_ledger(ledger, anchors, receipt_seqs=seqs, scope=scope, pinned=pinned)
    if as_json:
        echo_json(report.to_json())
        sys.exit(report.exit_code)
    if report.ok:
        from engine.receipts.note import Checkpoint

        line = f"verified {scope}: {report.checked} receipt(s)"
        if report.checkpoint_size is not None and report.checkpoint_root is not None:
            root = Checkpoint("", 0, report.checkpoint_root).text().split("\n")[2]
            line += f" against the signed checkpoint of size {report.checkpoint_size} (root {root})"
        if report.pinned_size is not None:
            line += f"; consistent with the pinned checkpoint of size {report.pinned_size}"
        click.echo(safe_text(line))
        return
    first = report.first
    assert first is not None
    more = len(report.failures) - 1
    tail = f" (+{more} more; --json lists all)" if more else ""
    click.echo(f"ggen: verification failed: {safe_text(first.line())}{tail}", err=True)
    sys.exit(report.exit_code)


# -- checkpoint -----------------------------------------------------------------------------------------
@incidents.command("checkpoint")
@click.option("--pin", is_flag=True, help="Also pin it: save it as DATA_DIR/trusted-checkpoint, which verify then requires the log to extend.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write the checkpoint note to this file (keep a copy off this machine).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def checkpoint(pin: bool, output: str | None, as_json: bool) -> None:
    """Print the newest signed checkpoint of the ledger (a C2SP signed note)."""
    from engine.receipts.note import NoteError, parse_signed_checkpoint

    ledger = _open_ledger()
    raw = ledger.latest_checkpoint()
    if raw is None:
        fail("the ledger has no checkpoint yet (nothing recorded)", EXIT_NOT_FOUND)
    try:
        cp = parse_signed_checkpoint(raw)
    except NoteError as exc:
        fail(f"the newest stored checkpoint is malformed: {exc}", EXIT_FAILED)
    targets = [Path(output)] if output else []
    if pin:
        old = _pinned(None, True)
        if old is not None:
            try:
                old_size = parse_signed_checkpoint(old).size
            except NoteError:
                old_size = 0
            if old_size > cp.size:
                fail(f"the pinned checkpoint (size {old_size}) is newer than the ledger's ({cp.size}); not moving the pin backwards", EXIT_FAILED)
        targets.append(data_dir().root / TRUSTED_CHECKPOINT_FILE)
    for path in targets:
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(raw)
            os.replace(tmp, path)
        except OSError as exc:
            fail(f"{path}: cannot write ({exc.strerror or exc})", EXIT_FAILED)
    if as_json:
        echo_json({"origin": cp.origin, "size": cp.size, "root": cp.note.text.split("\n")[2], "note": raw.decode("utf-8"), "written": [str(p) for p in targets]})
        return
    sys.stdout.write(raw.decode("utf-8"))
    for path in targets:
        click.echo(f"wrote {path}", err=True)
