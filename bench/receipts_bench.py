"""Receipt ledger benchmark: append and verify throughput beside the raw speed of what they use.

Prints, on this machine:
  - raw SQLite (WAL, synchronous=FULL) single-row commits/s, and ledger appends/s unbatched and
    batched (signing, hashing, Merkle nodes and a signed checkpoint per transaction included);
  - raw Ed25519 sign and verify rates of ``cryptography`` on one core;
  - ``verify --all`` throughput (library call and the real CLI) on one core and on all cores,
    as a share of the raw one-core verify rate, and the time to verify a 100,000-receipt ledger.

Run: ``.venv/bin/python bench/receipts_bench.py [--receipts 100000] [--quick]``
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from engine.events import IncidentEvent  # noqa: E402
from engine.receipts import ReceiptSink, verify_ledger  # noqa: E402
from engine.receipts.keys import KeyStore  # noqa: E402
from engine.receipts.ledger import Ledger  # noqa: E402
from engine.receipts.synthetic import event_stream  # noqa: E402
from engine.receipts.verify import worker_count  # noqa: E402

T0 = 1_769_349_600_000


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f}/s"


def raw_sqlite_commits(tmp: Path, n: int, blob: bytes) -> float:
    db = sqlite3.connect(tmp / "raw.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, leaf BLOB, envelope BLOB)")
    t = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (i, f"id-{i}", os.urandom(32), blob))
        db.execute("COMMIT")
    dt = time.perf_counter() - t
    db.close()
    return n / dt


def events(n: int, seed: int = 1) -> list[IncidentEvent]:
    out = []
    for e in event_stream(seed, T0, n // 4 + 10):
        out.append(e)
        if len(out) >= n:
            break
    return out


def by_incident(evs: list[IncidentEvent], batch: int) -> list[list[IncidentEvent]]:
    """Batches of about ``batch`` events that never split an incident's first receipt from the rest."""
    batches, cur = [], []
    for e in evs:
        cur.append(e)
        if len(cur) >= batch and e.kind == "recovery.verified":
            batches.append(cur)
            cur = []
    if cur:
        batches.append(cur)
    return batches


def ledger_appends(tmp: Path, name: str, evs: list[IncidentEvent], batch: int) -> tuple[float, Ledger, KeyStore]:
    keys = KeyStore.init(tmp / name / "keys", origin=f"ggen.ledger/{name}")
    ledger = Ledger.open(tmp / name / "ledger.sqlite", keys)
    sink = ReceiptSink(ledger, keys, lambda t: {"runbook": "a" * 64, "severity_rules": "b" * 64, "escalation_policy": "c" * 64})
    groups = [[e] for e in evs] if batch == 1 else by_incident(evs, batch)
    t = time.perf_counter()
    for g in groups:
        sink.append_events(g)
    dt = time.perf_counter() - t
    return len(evs) / dt, ledger, keys


def raw_ed25519(n: int, msg_len: int) -> tuple[float, float, float]:
    """(sign/s, verify/s wall, verify/s per CPU-second) on one core."""
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    msgs = [os.urandom(msg_len) for _ in range(n)]
    t = time.perf_counter()
    sigs = [key.sign(m) for m in msgs]
    sign_rate = n / (time.perf_counter() - t)
    t, c = time.perf_counter(), time.process_time()
    for m, s in zip(msgs, sigs):
        pub.verify(s, m)
    return sign_rate, n / (time.perf_counter() - t), n / (time.process_time() - c)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (verification workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn):  # noqa: ANN001, ANN201
    t, c = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - t, cpu_seconds() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--receipts", type=int, default=100_000, help="size of the ledger to verify (default 100000)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = ap.parse_args()
    n_verify = 5_000 if args.quick else args.receipts
    n_unbatched = 500 if args.quick else 3_000
    n_raw = 500 if args.quick else 3_000
    cores = worker_count()
    print(f"receipts benchmark: python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpu(s), {cores} worker(s) for verification")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sample = events(n_unbatched)
        # -- appends -------------------------------------------------------------------------
        _, small, small_keys = ledger_appends(tmp, "probe", sample[:50], 50)
        envelope = next(small.iter_receipts()).envelope
        raw_rate = raw_sqlite_commits(tmp, n_raw, envelope)
        unbatched, _, _ = ledger_appends(tmp, "unbatched", sample, 1)
        big_events = events(n_verify, seed=2)
        batched, ledger, keys = ledger_appends(tmp, "batched", big_events, 500)
        print()
        print(f"append (one receipt = DSSE-signed canonical JSON, ~{len(envelope)} bytes stored)")
        print(f"  raw SQLite WAL+FULL single-row commits  {raw_rate:>10,.0f}/s")
        print(f"  ledger append, unbatched (1/txn)        {unbatched:>10,.0f}/s   ({unbatched / raw_rate:.0%} of raw commits)")
        print(f"  ledger append, batched (~500/txn)       {batched:>10,.0f}/s   ({batched / raw_rate:.1f}x raw commits; {len(big_events):,} receipts)")
        # -- raw crypto --------------------------------------------------------------------------
        sign_rate, verify_rate, verify_cpu_rate = raw_ed25519(10_000 if args.quick else 30_000, len(envelope) // 4 * 3)
        print()
        print("Ed25519 (cryptography), one core")
        print(f"  sign                                    {sign_rate:>10,.0f}/s")
        print(f"  verify                                  {verify_rate:>10,.0f}/s   ({verify_cpu_rate:,.0f} per CPU-second)")
        # -- verification ------------------------------------------------------------------------------
        size = ledger.size()
        rep1, one, one_cpu = timed(lambda: verify_ledger(ledger, keys.anchors(), workers=1))
        assert rep1.ok, rep1.failures[:3]
        repn, many, many_cpu = timed(lambda: verify_ledger(ledger, keys.anchors(), workers=cores))
        assert repn.ok, repn.failures[:3]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "console.cli.main", "--data-dir", str(tmp / "batched"), "incidents", "verify", "--all"]
        res, cli, cli_cpu = timed(lambda: subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True))
        assert res.returncode == 0, res.stderr
        print()
        print(f"verify --all of a {size:,}-receipt ledger (signatures, payloads, Merkle root, history, chain, parents, order)")
        print("                                           wall rate   vs raw verify   wall time   receipts per CPU-second")
        for label, wall, cpu in (
            ("library, 1 worker", one, one_cpu),
            (f"library, {cores} workers", many, many_cpu),
            ("`ggen incidents verify --all`", cli, cli_cpu),
        ):
            print(f"  {label:<38}{size / wall:>9,.0f}/s   {size / wall / verify_rate:>10.0%}   {wall:>8.2f} s   {size / cpu:>9,.0f} ({size / cpu / verify_cpu_rate:.0%} of raw)")
        # single receipt, with proofs from stored subtree hashes
        mid = ledger.get(size // 2)
        assert mid is not None
        t = time.perf_counter()
        for _ in range(20):
            verify_ledger(ledger, keys.anchors(), receipt_seqs=[mid.seq])
        single = (time.perf_counter() - t) / 20
        print(f"  one receipt (--receipt-id) in that ledger: {single * 1000:.1f} ms")
        print()
        print(f"load average during the run: {os.getloadavg()[0]:.2f} (other work on the machine skews wall times; CPU-second rates are steadier)")


if __name__ == "__main__":
    main()
