"""`ggen keys`: export-public to stdout with '-', and a refused rotation leaves no key behind."""
from __future__ import annotations

import os

import orjson
from click.testing import CliRunner

from console.cli.main import cli
from engine.receipts.keys import KeyStore
from engine.receipts.ledger import Ledger, LedgerError, ReceiptDraft
from engine.receipts.rotation import rotate_key


def run(dd, *args: str):
    return CliRunner().invoke(cli, ["--data-dir", str(dd), *args])


def test_export_public_to_dash_prints_to_stdout_and_writes_no_file(tmp_path, monkeypatch):
    dd = tmp_path / "dd"
    assert run(dd, "keys", "init", "--origin", "ggen.ledger/dash").exit_code == 0
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    res = run(dd, "keys", "export-public", "--output", "-")
    assert res.exit_code == 0, res.output
    assert res.stdout == run(dd, "keys", "export-public").stdout and "ggen.ledger/dash+" in res.stdout
    assert list(cwd.iterdir()) == []
    res = run(dd, "keys", "export-public", "-o", "-", "--json")
    assert orjson.loads(res.stdout)["origin"] == "ggen.ledger/dash"
    assert list(cwd.iterdir()) == []


def test_refused_rotation_creates_no_key(tmp_path):
    dd = tmp_path / "dd"
    assert run(dd, "keys", "init", "--origin", "ggen.ledger/rot").exit_code == 0
    keys = KeyStore.open(dd / "keys")
    with Ledger.open(dd / "ledger.sqlite", keys) as ledger:
        ledger.append([ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1)], keys)
    before_files = sorted(p.name for p in (dd / "keys").iterdir())
    before_ring = (dd / "keys" / "keyring.json").read_bytes()
    os.chmod(keys.private_key_path(keys.genesis_key_id), 0o644)
    res = run(dd, "keys", "rotate", "--reason", "test")
    assert res.exit_code == 5 and "chmod 600" in res.output
    assert sorted(p.name for p in (dd / "keys").iterdir()) == before_files
    assert (dd / "keys" / "keyring.json").read_bytes() == before_ring
    os.chmod(keys.private_key_path(keys.genesis_key_id), 0o600)
    shown = orjson.loads(run(dd, "keys", "show", "--json").stdout)
    assert [k["status"] for k in shown["keys"]] == ["current"]
    # once fixed, the rotation goes through
    assert run(dd, "keys", "rotate").exit_code == 0
    shown = orjson.loads(run(dd, "keys", "show", "--json").stdout)
    assert sorted(k["status"] for k in shown["keys"]) == ["current", "retired"]


def test_rotation_the_ledger_refuses_discards_its_new_key(tmp_path):
    keys = KeyStore.init(tmp_path / "keys")
    ledger = Ledger.open(tmp_path / "l.sqlite", keys)
    rotate_key(ledger, keys, now_ms=1)
    ring = orjson.loads((tmp_path / "keys" / "keyring.json").read_bytes())
    assert len(ring["keys"]) == 2
    # a second rotation that fails inside the ledger (here: the ledger refuses to append at all)
    def broken_append(drafts, signers):
        raise LedgerError("disk full")
    ledger.append = broken_append  # type: ignore[method-assign]
    try:
        rotate_key(ledger, keys, now_ms=2)
    except LedgerError:
        pass
    else:
        raise AssertionError("the rotation should have failed")
    ring = orjson.loads((tmp_path / "keys" / "keyring.json").read_bytes())
    assert len(ring["keys"]) == 2  # the key made for the failed rotation is gone, the earlier one kept
    assert len(list((tmp_path / "keys").glob("*.key"))) == 2
