"""The receipts feed: new receipts from the ledger, each checked against the trusted keys.

The console reads the ledger through its own read-only connection (SQLite WAL: the engine keeps
appending while we read) and checks each new envelope with ``engine.receipts.verify``: canonical
DSSE bytes, a signature by a key trusted at that seq (key rotations followed), a well-formed
payload stored at its own seq. This runs in a worker thread, never on the UI thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.datadir import DataDir


@dataclass
class ReceiptLine:
    """One receipt as the feed shows it."""

    seq: int
    kind: str
    incident_id: str | None
    observed_at_ms: int
    severity: str | None
    actor: str
    summary: str
    verified: bool
    failure: str | None  # failure kind slug and reason when not verified


class ReceiptFeed:
    """Incremental reader of one data directory's ledger. Not thread-safe: one worker at a time."""

    def __init__(self, data_dir: DataDir, backlog: int = 100) -> None:
        self.data_dir = data_dir
        self.backlog = backlog
        self.next_seq: int | None = None
        self._ledger: Any = None
        self._trust: Any = None
        self._origin: str | None = None
        self.problem: str | None = None

    def _open(self) -> bool:
        from engine.receipts import KeyStore, Ledger, LedgerError
        from engine.receipts.keys import KeyStoreError
        from engine.receipts.verify import apply_rotations

        if not self.data_dir.ledger_path.exists():
            self.problem = "no ledger yet"
            return False
        try:
            ledger = Ledger(self.data_dir.ledger_path, readonly=True)
        except LedgerError as exc:
            self.problem = str(exc)
            return False
        origin = ledger.meta("origin")
        if origin is None:
            ledger.close()
            self.problem = "ledger has no origin yet"
            return False
        try:
            trust = KeyStore.open(self.data_dir.keys_dir).anchors()
        except (KeyStoreError, OSError) as exc:
            trust = None
            self.problem = f"no trusted key: {exc}"
        if trust is not None:
            apply_rotations(trust, origin, [(r.seq, r.envelope) for r in ledger.rotation_receipts()])
        self._ledger, self._trust, self._origin = ledger, trust, origin
        return True

    def poll(self, limit: int = 500) -> list[ReceiptLine]:
        """Receipts appended since the last call (at most ``limit``), verified."""
        from engine.receipts.ledger import KEY_ROTATED
        from engine.receipts.verify import apply_rotations, check_envelope

        if self._ledger is None and not self._open():
            return []
        ledger = self._ledger
        size = ledger.size()
        if self.next_seq is None:
            self.next_seq = max(0, size - self.backlog)
        out: list[ReceiptLine] = []
        if self.next_seq >= size:
            return out
        end = min(size, self.next_seq + limit)
        for rec in ledger.iter_receipts(self.next_seq, end):
            failure = None
            if self._trust is None:
                failure = "unverified: no trusted key"
            else:
                _, _, fail = check_envelope(rec.envelope, rec.seq, self._origin or "", self._trust)
                if fail is not None:
                    failure = f"{fail.kind.slug}: {fail.reason}"
                elif rec.kind == KEY_ROTATED:
                    apply_rotations(self._trust, self._origin or "", [(rec.seq, rec.envelope)])
            try:
                p = rec.payload()
            except Exception:
                p = {}
            out.append(
                ReceiptLine(
                    seq=rec.seq,
                    kind=rec.kind,
                    incident_id=rec.incident_id,
                    observed_at_ms=rec.observed_at_ms,
                    severity=p.get("severity") if isinstance(p.get("severity"), str) else None,
                    actor=str(p.get("actor", "")),
                    summary=str(p.get("summary", "")),
                    verified=failure is None,
                    failure=failure,
                )
            )
        self.next_seq = end
        return out

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
