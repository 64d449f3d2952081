"""The ledger's unsigned columns (kind, ids, times, key id, leaf hash) are checked against the
signed envelope by every verify mode, with one exit code, blaming the edited receipt; `incidents
show` shows only signed fields."""
from __future__ import annotations

import shutil
import sqlite3

import orjson
import pytest
from click.testing import CliRunner

from console.cli.main import cli
from engine.receipts.verify import FailureKind
from ops_support import ledger_with_incident

CODE = FailureKind.STORED_MISMATCH.code


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("stored") / "dd"
    ledger_with_incident(root)
    return root


@pytest.fixture
def dd(base, tmp_path):
    """A copy of the ledger, and the incident whose middle receipt the tests edit."""
    root = tmp_path / "dd"
    shutil.copytree(base, root)
    with sqlite3.connect(root / "ledger.sqlite") as db:
        iid = db.execute("SELECT incident_id FROM receipts WHERE incident_id IS NOT NULL GROUP BY incident_id HAVING count(*) >= 3 ORDER BY min(seq) LIMIT 1").fetchone()[0]
        rows = db.execute("SELECT seq, receipt_id, kind FROM receipts WHERE incident_id = ? ORDER BY seq", (iid,)).fetchall()
    return root, iid, rows


def run(root, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(root), *args])


def edit(root, sql, *params):
    with sqlite3.connect(root / "ledger.sqlite") as db:
        db.execute(sql, params)


def modes(root, iid, rid):
    return {
        "all": ["incidents", "verify", "--all"],
        "receipt": ["incidents", "verify", "--receipt-id", rid],
        "incident": ["incidents", "verify", "--incident-id", iid],
    }


def failures(root, args):
    res = run(root, *args, "--json")
    return res.exit_code, orjson.loads(res.stdout)["failures"]


def test_untouched_copy_verifies_in_every_mode(dd):
    root, iid, rows = dd
    for args in modes(root, iid, rows[1][1]).values():
        assert run(root, *args).exit_code == 0


@pytest.mark.parametrize(
    "column,value",
    [
        ("kind", "incident.detected"),
        ("incident_id", "urn:uuid:00000000-0000-4000-8000-000000000000"),
        ("observed_at_ms", 1),
        ("recorded_at_ms", 2),
        ("key_id", "00000000"),
    ],
)
def test_an_edited_index_column_fails_every_mode_with_one_code(dd, column, value):
    root, iid, rows = dd
    seq, rid, _ = rows[1]
    edit(root, f"UPDATE receipts SET {column} = ? WHERE seq = ?", value, seq)
    for name, args in modes(root, iid, rid).items():
        if name == "incident" and column == "incident_id":
            args = modes(root, "urn:uuid:00000000-0000-4000-8000-000000000000", rid)["incident"]
        res = run(root, *args)
        assert res.exit_code == CODE, (name, res.output)
        line = res.output.strip()
        assert len(line.splitlines()) == 1 and "[stored-mismatch]" in line and f"seq {seq} {rid}" in line and column in line, (name, line)


def test_a_damaged_stored_leaf_hash_is_blamed_on_its_own_receipt_in_every_mode(dd):
    root, iid, rows = dd
    seq, rid, _ = rows[1]
    edit(root, "UPDATE receipts SET leaf_hash = zeroblob(32) WHERE seq = ?", seq)
    for name, args in modes(root, iid, rid).items():
        code, fails = failures(root, args)
        assert code == CODE, (name, fails)
        assert [(f["kind"], f["seq"], f["receipt_id"]) for f in fails] == [("stored-mismatch", seq, rid)], name
        assert "leaf hash" in fails[0]["reason"]
    # the next receipt alone still verifies: its inclusion proof does not lean on the damaged column
    assert run(root, "incidents", "verify", "--receipt-id", rows[2][1]).exit_code == 0


def test_an_edited_envelope_still_blames_only_itself_and_its_links(dd):
    root, iid, rows = dd
    seq = rows[1][0]
    with sqlite3.connect(root / "ledger.sqlite") as db:
        raw = bytes(db.execute("SELECT envelope FROM receipts WHERE seq = ?", (seq,)).fetchone()[0])
        db.execute("UPDATE receipts SET envelope = ? WHERE seq = ?", (raw.replace(b'"sig":"', b'"sig":"A', 1), seq))
    code, fails = failures(root, modes(root, iid, rows[2][1])["receipt"])
    assert code == FailureKind.PREV_CHAIN.code and all(f["kind"] != "inclusion-failed" for f in fails)


def test_show_prints_the_signed_kind_not_the_edited_column(dd):
    root, iid, rows = dd
    seq, rid, kind = rows[1]
    assert kind != "incident.detected"
    edit(root, "UPDATE receipts SET kind = 'incident.detected' WHERE seq = ?", seq)
    js = orjson.loads(run(root, "incidents", "show", iid, "--json").stdout)
    row = next(r for r in js["receipts"] if r["seq"] == seq)
    assert row["kind"] == kind and row["verified"] is False and row["failures"][0]["kind"] == "stored-mismatch"
    text = run(root, "incidents", "show", iid).output
    line = next(x for x in text.splitlines() if x.startswith("│") and f" {seq} " in x[:8])
    assert kind in line and "incident.detected" not in line and "FAILED stored-mismatch" in line
