"""``ggen keys``: the Ed25519 keys that sign receipts and checkpoints (init, show, rotate, export-public)."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import click

from console.cli.common import data_dir, echo_json, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REFUSED, fail, safe_text, wall_now_ms


@click.group()
def keys() -> None:
    """Signing keys of the receipt ledger: init, show, rotate, export-public."""


def _store() -> Any:
    from engine.receipts.keys import KeyStore, KeyStoreError

    try:
        return KeyStore.open(data_dir().keys_dir)
    except KeyStoreError as exc:
        fail(str(exc), EXIT_NOT_FOUND)


def _ledger(writable: bool, store: Any) -> Any:
    from engine.receipts.ledger import Ledger, LedgerError

    path = data_dir().ledger_path
    if not writable and not path.exists():
        return None
    try:
        return Ledger.open(path, store, readonly=not writable) if writable else Ledger(path, readonly=True)
    except LedgerError as exc:
        fail(str(exc), EXIT_FAILED)


@keys.command("init")
@click.option("--origin", default=None, metavar="NAME", help="Ledger origin and key name (no spaces or '+'); default: ggen.ledger/<random>.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def init(origin: str | None, as_json: bool) -> None:
    """Create the signing key (0600, in a 0700 directory). Refuses if keys exist."""
    from engine.receipts.keys import KeyStore, KeyStoreError
    from engine.receipts.note import NoteError

    dd = data_dir().ensure()
    try:
        store = KeyStore.init(dd.keys_dir, origin, wall_now_ms())
    except (KeyStoreError, NoteError) as exc:
        fail(str(exc), EXIT_REFUSED)
    info = store.info(store.genesis_key_id)
    if as_json:
        echo_json({"origin": store.origin, "directory": str(store.directory), **info.to_json()})
        return
    click.echo(f"created signing key {info.key_id} for ledger origin {safe_text(store.origin)}")
    click.echo(f"  fingerprint  {info.fingerprint}")
    click.echo(f"  private key  {store.directory / info.file} (mode 0600)")
    click.echo("share the public key with: ggen keys export-public --output ggen-keys.pub")


def _mode_note(path: Path) -> str:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return "missing"
    return f"{mode:04o}" + ("" if not mode & 0o077 else " UNSAFE: chmod 600")


@keys.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(as_json: bool) -> None:
    """Show each key: id, SHA-256 fingerprint, validity window (seqs), and status."""
    from engine.receipts.rotation import key_windows

    store = _store()
    ledger = _ledger(False, store)
    windows = {k.key_id_hex: k for k in key_windows(ledger, store)}
    current = ledger.meta("current_key_id") if ledger is not None else store.genesis_key_id
    rows = []
    for info in store.keys:
        w = windows.get(info.key_id)
        if info.key_id == current:
            status = "current"
        elif w is not None:
            status = "retired"
        else:
            status = "unused"
        rows.append(
            {
                **info.to_json(),
                "status": status,
                "valid_from_seq": None if w is None else w.from_seq,
                "valid_to_seq": None if w is None else w.to_seq,
                "private_key_mode": _mode_note(store.directory / info.file),
            }
        )
    if as_json:
        echo_json({"origin": store.origin, "directory": str(store.directory), "genesis_key_id": store.genesis_key_id, "keys": rows})
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    console.print(Text(f"origin {safe_text(store.origin)}   keys in {store.directory}"))
    table = Table(header_style="bold")
    for col in ("key id", "status", "seqs", "fingerprint", "file mode"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        seqs = "-" if r["valid_from_seq"] is None else f"{r['valid_from_seq']}-{'' if r['valid_to_seq'] is None else r['valid_to_seq']}"
        table.add_row(r["key_id"], r["status"], seqs, r["fingerprint"], r["private_key_mode"])
    console.print(table)


@keys.command("rotate")
@click.option("--reason", default="", help="Why (recorded in the key.rotated receipt).")
@click.option("--actor", default=None, help="Who rotates (default: $USER).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rotate(reason: str, actor: str | None, as_json: bool) -> None:
    """Replace the signing key: a key.rotated receipt signed by the old key names the new one."""
    from engine.receipts.keys import KeyStoreError
    from engine.receipts.ledger import LedgerError
    from engine.receipts.rotation import rotate_key

    store = _store()
    ledger = _ledger(True, store)
    who = actor or os.environ.get("USER") or "operator"
    try:
        receipt, new = rotate_key(ledger, store, now_ms=wall_now_ms(), actor=f"person:{who}", reason=reason)
    except (KeyStoreError, LedgerError) as exc:
        fail(str(exc), EXIT_REFUSED)
    old_id = receipt.payload()["evidence"]["old_key_id"]
    if as_json:
        echo_json({"receipt_id": receipt.receipt_id, "seq": receipt.seq, "old_key_id": old_id, **new.to_json(), "valid_from_seq": receipt.seq + 1})
        return
    click.echo(f"rotated: key {old_id} signed receipts up to seq {receipt.seq}; key {new.key_id} signs from seq {receipt.seq + 1}")
    click.echo(f"  receipt      {receipt.receipt_id}")
    click.echo(f"  fingerprint  {new.fingerprint}")
    click.echo("re-share the public keys: ggen keys export-public --output ggen-keys.pub")


@keys.command("export-public")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default=None, help="Write here instead of stdout ('-': stdout).")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON (the file format stays text).")
def export_public(output: str | None, as_json: bool) -> None:
    """Write the verifier keys (with their seq windows): all a verifier needs besides an export."""
    from engine.receipts.keys import format_public_keys
    from engine.receipts.note import verifier_key
    from engine.receipts.rotation import key_windows

    if output == "-":
        output = None
    store = _store()
    ledger = _ledger(False, store)
    windows = key_windows(ledger, store)
    text = format_public_keys(store.origin, windows)
    if as_json and output is None:
        echo_json(
            {
                "origin": store.origin,
                "keys": [
                    {"key_id": k.key_id_hex, "verifier_key": verifier_key(k.name, k.public_key), "valid_from_seq": k.from_seq, "valid_to_seq": k.to_seq}
                    for k in windows
                ],
            }
        )
        return
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="ascii")
    except OSError as exc:
        fail(f"{output}: cannot write ({exc.strerror or exc})", EXIT_FAILED)
    click.echo(f"wrote public keys to {output}", err=True)
