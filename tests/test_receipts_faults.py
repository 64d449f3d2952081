"""Faults: a writer process SIGKILLed in the middle of appends, again and again, and readers in
other processes while a writer appends. Real processes, a real SQLite file."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.receipts import root_hash, summarize_incidents, verify_ledger
from engine.receipts.keys import KeyStore
from engine.receipts.ledger import Ledger
from engine.receipts.note import parse_signed_checkpoint

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_769_349_600_000

# Appends one whole incident (4-5 receipts) per transaction, forever, and reports each commit
# only after append() returned.
WRITER = r"""
import sys
from pathlib import Path
from engine.receipts.keys import KeyStore
from engine.receipts.ledger import Ledger
from engine.receipts.sink import ReceiptSink
from engine.receipts.synthetic import event_stream

root, seed, limit = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
keys = KeyStore.open(root / "keys")
ledger = Ledger.open(root / "ledger.sqlite", keys)
sink = ReceiptSink(ledger, keys, lambda t: {"runbook": "e" * 64})
keys.signer(keys.genesis_key_id)  # load the key (and cryptography, imported lazily) before "ready"
batch, n = [], 0
print("ready", flush=True)
for event in event_stream(seed, 1769349600000 + seed * 10**9, 10**6):
    if batch and event.incident_id != batch[-1].incident_id:
        done = sink.append_events(batch)
        sys.stdout.write(f"{done[-1].seq} {done[-1].receipt_id}\n")
        sys.stdout.flush()
        batch, n = [], n + 1
        if n == limit:
            break
    batch.append(event)
"""


def _writer(root: Path, seed: int, limit: int = -1) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(seed), str(limit)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _internal_nodes(size: int) -> int:
    return size - bin(size).count("1")


def test_sigkill_mid_append_loses_nothing_committed(tmp_path):
    keys = KeyStore.init(tmp_path / "keys", origin="ggen.ledger/sigkill")
    Ledger.open(tmp_path / "ledger.sqlite", keys).close()
    rng = random.Random(20260125)
    committed: dict[int, str] = {}
    runs_with_commits = 0
    size = 0
    for run in range(60):
        proc = _writer(tmp_path, seed=run)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err
        lines = [line.split() for line in out.splitlines() if line.strip()]
        runs_with_commits += bool(lines)
        for seq, rid in lines:
            committed[int(seq)] = rid

        ledger = Ledger.open(tmp_path / "ledger.sqlite", keys)
        before, size = size, ledger.size()
        # every receipt the writer saw committed is there, unchanged in place
        for seq, rid in committed.items():
            rec = ledger.get(seq)
            assert rec is not None and rec.receipt_id == rid, (run, seq)
        assert size >= max(committed, default=-1) + 1
        # a torn batch leaves no trace: the newest checkpoint covers exactly the receipts, the
        # stored tree has exactly the nodes of that size, and every incident is whole (each
        # batch was one complete incident, ending with recovery.verified)
        cp = parse_signed_checkpoint(ledger.latest_checkpoint()) if size else None
        assert cp is None or (cp.size == size and cp.root == root_hash(ledger.leaf_hashes()))
        assert ledger._db.execute("SELECT COUNT(*) FROM tree_nodes").fetchone()[0] == _internal_nodes(size)
        new = [r.payload() for r in ledger.iter_receipts(before)]
        assert all(s.status == "resolved" for s in summarize_incidents(new)), run
        # the receipts written by this run verify (signatures, inclusion, chain, parents, order)
        if size > before:
            report = verify_ledger(ledger, keys.anchors(), receipt_seqs=range(before, size))
            assert report.ok, report.failures[:3]
        if run % 15 == 14:
            assert verify_ledger(ledger, keys.anchors()).ok
        ledger.close()
    assert runs_with_commits >= 40, runs_with_commits  # kills landed in the middle of appending
    final = Ledger.open(tmp_path / "ledger.sqlite", keys)
    report = verify_ledger(final, keys.anchors())
    assert report.ok, report.failures[:3]
    assert report.checked == size and size > 100


def test_readers_see_a_consistent_prefix_while_a_writer_appends(tmp_path):
    keys = KeyStore.init(tmp_path / "keys", origin="ggen.ledger/readers")
    Ledger.open(tmp_path / "ledger.sqlite", keys).close()
    proc = _writer(tmp_path, seed=1, limit=600)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    reader = Ledger(tmp_path / "ledger.sqlite", readonly=True, busy_timeout_ms=0)
    seen: list[bytes] = []
    reads = grew = cli_runs = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GGEN_DATA_DIR": str(tmp_path)}
    while True:
        alive = proc.poll() is None
        with reader.snapshot():
            size = reader.size()
            raw_cp = reader.latest_checkpoint()
            leaves = reader.leaf_hashes()
        reads += 1
        assert len(leaves) == size
        if size:
            cp = parse_signed_checkpoint(raw_cp)
            assert cp.size == size and cp.root == root_hash(leaves)  # a whole, signed prefix
        assert leaves[: len(seen)] == seen  # nothing already seen changes
        grew += len(leaves) > len(seen)
        seen = leaves
        if alive and cli_runs < 2 and size:
            res = subprocess.run([sys.executable, "-m", "console.cli.main", "incidents", "list", "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
            assert res.returncode == 0 and "locked" not in res.stderr, res.stderr
            cli_runs += 1
        if not alive:
            break
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert grew >= 3 and reads >= 4 and cli_runs == 2
    assert len(seen) == Ledger(tmp_path / "ledger.sqlite", readonly=True).size() > 500
    assert verify_ledger(Ledger(tmp_path / "ledger.sqlite", readonly=True), keys.anchors()).ok
