"""The receipt ledger: an append-only SQLite (WAL) log of DSSE envelopes under an RFC 6962 tree.

One ``BEGIN IMMEDIATE`` transaction per batch reads the tip, assigns ``seq`` and ``prev``,
signs, inserts the envelopes with their leaf hashes, stores the new complete subtree hashes,
and writes a signed checkpoint for the new size, then commits (``synchronous=FULL``). A batch
is therefore all-or-nothing: a crash leaves either every receipt of it, with its checkpoint, or
none. Readers in other processes see a consistent prefix at any time.
"""
from __future__ import annotations

import base64
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

from engine.clock import iso_utc

from .canonical import canonical_json
from .dsse import PAYLOAD_TYPE, decode_envelope, encode_envelope, pae
from .ids import URN, IdError, is_receipt_id, new_receipt_id, parse_id_query
from .keys import KeyStore, Signer, SignerSource
from .merkle import EMPTY_ROOT, Frontier, consistency_path, inclusion_path, leaf_hash, range_hash
from .note import Checkpoint, SignedCheckpoint, parse_signed_checkpoint, sign_note

SCHEMA = "ggen.receipt/v1"
KEY_ROTATED = "key.rotated"
DETECTED = "incident.detected"
SCHEMA_VERSION = 1
_FETCH = 2000

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
    seq INTEGER PRIMARY KEY,
    receipt_id TEXT NOT NULL UNIQUE,
    incident_id TEXT,
    kind TEXT NOT NULL,
    observed_at_ms INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    leaf_hash BLOB NOT NULL,
    envelope BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_incident ON receipts (incident_id, seq);
CREATE INDEX IF NOT EXISTS receipts_rotations ON receipts (seq) WHERE kind = 'key.rotated';
CREATE TABLE IF NOT EXISTS tree_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    key_id TEXT NOT NULL,
    written_at_ms INTEGER NOT NULL,
    note BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS exports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    size INTEGER NOT NULL,
    exported_at_ms INTEGER NOT NULL
);
"""


def _iso(ms: int) -> str:
    """``engine.clock.iso_utc`` without datetime objects (appends format two times per receipt)."""
    if ms < 0:
        return iso_utc(ms)
    t = time.gmtime(ms // 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms % 1000:03d}Z"


class LedgerError(Exception):
    """The ledger refused an operation or cannot be used; the message says why."""


class LedgerNotFound(LedgerError):
    """No ledger file exists yet."""


class LedgerCorrupt(LedgerError):
    """The file is not a readable ggen ledger."""


class ReceiptNotFound(LedgerError):
    """No receipt or incident matches the id given."""


class AmbiguousId(LedgerError):
    """An id prefix matches more than one receipt or incident."""


@dataclass
class ReceiptDraft:
    """What a writer says; the ledger adds ``schema``, ``ledger``, ``seq``, ``prev`` and ``key_id``.

    ``parents`` None means "the previous receipt of the same incident" (resolved inside the
    append transaction, so it is right even across restarts and batches). ``receipt_id`` None
    means a fresh UUID, except for ``incident.detected`` whose id is the incident id.
    """

    kind: str
    observed_at_ms: int
    recorded_at_ms: int
    incident_id: str | None = None
    incident_type: str | None = None
    severity: str | None = None
    service: str | None = None
    region: str | None = None
    source_signal: str | None = None
    summary: str = ""
    actor: str = "engine"
    policy: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    actions: list[Any] = field(default_factory=list)
    receipt_id: str | None = None
    parents: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class StoredReceipt:
    """One receipt as stored: the exact envelope bytes and the columns indexed beside it."""

    seq: int
    receipt_id: str
    incident_id: str | None
    kind: str
    observed_at_ms: int
    recorded_at_ms: int
    key_id: str
    leaf_hash: bytes
    envelope: bytes

    def payload(self) -> dict[str, Any]:
        """The decoded payload, for display (not verified; see engine.receipts.verify)."""
        return orjson.loads(decode_envelope(self.envelope).payload)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "StoredReceipt":
        return cls(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bytes(row[7]), bytes(row[8]))


_COLS = "seq, receipt_id, incident_id, kind, observed_at_ms, recorded_at_ms, key_id, leaf_hash, envelope"


class Ledger:
    """An open ledger file. Thread-safe; any number of processes may read while one appends."""

    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise LedgerNotFound(f"no ledger at {self.path} (nothing has been recorded yet)")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if readonly:
                self._check_schema()
                self._db.execute("PRAGMA query_only = ON")
            else:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
                self._create_schema()
            self._db.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            raise LedgerCorrupt(f"{self.path}: not a readable ledger ({exc})") from None
        self._frontier: Frontier | None = None
        self._known_size = -1
        self._last_by_incident: dict[str, tuple[str, str]] = {}

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, keys: KeyStore | None = None, *, readonly: bool = False) -> "Ledger":
        """Open (creating if needed, unless ``readonly``) and bind to ``keys``' origin."""
        ledger = cls(path, readonly=readonly)
        if keys is not None:
            ledger.bind(keys)
        return ledger

    def _create_schema(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    raise LedgerCorrupt(f"{self.path}: ledger schema version {version} is not supported")
                for stmt in _DDL.split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _check_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise LedgerCorrupt(f"{self.path}: not a ggen ledger (schema version {version})")

    def bind(self, keys: KeyStore) -> None:
        """Record the key store's origin and genesis key in a new ledger, or check they match."""
        origin = self.meta("origin")
        if origin is None:
            if self.readonly:
                raise LedgerCorrupt(f"{self.path}: ledger has no origin recorded")
            with self._write():
                if self._meta_get("origin") is None:
                    for k, v in (("origin", keys.origin), ("genesis_key_id", keys.genesis_key_id), ("current_key_id", keys.genesis_key_id)):
                        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (k, v))
        elif origin != keys.origin:
            raise LedgerError(f"{self.path}: ledger origin {origin!r} does not match the keys' origin {keys.origin!r}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[None]:
        if self.readonly:
            raise LedgerError(f"{self.path}: opened read-only")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise LedgerError(f"{self.path}: cannot start a write ({exc})") from None
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                self._frontier = None
                self._known_size = -1
                self._last_by_incident.clear()
                raise

    @contextmanager
    def snapshot(self) -> Iterator["Ledger"]:
        """Read several things from one consistent state of the ledger."""
        with self._lock:
            if self._db.in_transaction:
                yield self
                return
            self._db.execute("BEGIN")
            try:
                yield self
            finally:
                self._db.execute("COMMIT")

    # -- meta -------------------------------------------------------------------------------------
    def _meta_get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def meta(self, key: str) -> str | None:
        with self._lock:
            return self._meta_get(key)

    @property
    def origin(self) -> str:
        origin = self.meta("origin")
        if origin is None:
            raise LedgerError(f"{self.path}: ledger has no origin yet (no keys bound)")
        return origin

    def current_key_id(self) -> str:
        kid = self.meta("current_key_id")
        if kid is None:
            raise LedgerError(f"{self.path}: ledger has no signing key yet (no keys bound)")
        return kid

    # -- appending ----------------------------------------------------------------------------------
    def _size_locked(self) -> tuple[int, bytes | None]:
        row = self._db.execute("SELECT seq, leaf_hash FROM receipts ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, None) if row is None else (row[0] + 1, bytes(row[1]))

    def _previous_of(self, incident_id: str) -> tuple[str, str] | None:
        cached = self._last_by_incident.get(incident_id)
        if cached is not None:
            return cached
        row = self._db.execute(
            "SELECT receipt_id, leaf_hash FROM receipts WHERE incident_id = ? ORDER BY seq DESC LIMIT 1", (incident_id,)
        ).fetchone()
        if row is None:
            return None
        found = (row[0], bytes(row[1]).hex())
        self._last_by_incident[incident_id] = found
        return found

    def append(self, drafts: Sequence[ReceiptDraft], keys: SignerSource) -> list[StoredReceipt]:
        """Sign and append ``drafts`` in one transaction, with a checkpoint of the new size."""
        if not drafts:
            return []
        with self._write():
            origin = self._meta_get("origin")
            key_id = self._meta_get("current_key_id")
            if origin is None or key_id is None:
                raise LedgerError(f"{self.path}: ledger is not bound to a key store yet")
            signer = keys.signer(key_id)
            size, tip = self._size_locked()
            if self._frontier is None or self._known_size != size:
                self._frontier = Frontier.load(size, self._node_locked)
                self._last_by_incident.clear()
            frontier = self._frontier
            prev = None if tip is None else tip.hex()
            rows: list[tuple[Any, ...]] = []
            nodes: list[tuple[int, int, bytes]] = []
            emit = lambda level, idx, h: nodes.append((level, idx, h))  # noqa: E731
            batch_last: dict[str, tuple[str, str]] = {}
            rotate_to: str | None = None
            out: list[StoredReceipt] = []
            for i, d in enumerate(drafts):
                seq = size + i
                if rotate_to is not None:
                    raise LedgerError("a key.rotated receipt must be the last of its batch")
                payload = self._payload(d, origin, seq, prev, key_id, batch_last)
                if d.kind == KEY_ROTATED:
                    rotate_to = self._check_rotation(payload, key_id, keys)
                body = canonical_json(
                    payload, vouched=True, parts=(payload["parents"], payload["policy"], payload["evidence"], payload["actions"])
                )
                sig = signer.sign(pae(PAYLOAD_TYPE, body))
                env = encode_envelope(PAYLOAD_TYPE, body, key_id, sig)
                lh = leaf_hash(env)
                frontier.append(lh, emit)
                rid, iid = payload["receipt_id"], payload["incident_id"]
                rows.append((seq, rid, iid, d.kind, int(d.observed_at_ms), int(d.recorded_at_ms), key_id, lh, env))
                out.append(StoredReceipt(seq, rid, iid, d.kind, int(d.observed_at_ms), int(d.recorded_at_ms), key_id, lh, env))
                if iid is not None:
                    batch_last[iid] = (rid, lh.hex())
                prev = lh.hex()
            try:
                self._db.executemany(f"INSERT INTO receipts ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.IntegrityError:
                dup = self._duplicate_id([r[1] for r in rows])
                raise LedgerError(f"receipt id {dup} is already recorded") from None
            self._db.executemany("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
            new_size = size + len(drafts)
            self._insert_checkpoint(signer, origin, new_size, frontier.root(), int(drafts[-1].recorded_at_ms))
            if rotate_to is not None:
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'current_key_id'", (rotate_to,))
        self._known_size = new_size
        self._last_by_incident.update(batch_last)
        return out

    def _duplicate_id(self, ids: list[str]) -> str:
        seen: set[str] = set()
        for rid in ids:
            if rid in seen:
                return rid
            seen.add(rid)
        for rid in ids:
            if self._db.execute("SELECT 1 FROM receipts WHERE receipt_id = ?", (rid,)).fetchone():
                return rid
        return "?"

    def _payload(
        self, d: ReceiptDraft, origin: str, seq: int, prev: str | None, key_id: str, batch_last: dict[str, tuple[str, str]]
    ) -> dict[str, Any]:
        if not isinstance(d.kind, str) or not d.kind:
            raise LedgerError("receipt kind must be a non-empty string")
        for name in ("incident_type", "severity", "service", "region", "source_signal"):
            v = getattr(d, name)
            if v is not None and type(v) is not str:
                raise LedgerError(f"receipt field {name} must be a string or None, not {type(v).__name__}")
        for name in ("summary", "actor"):
            if type(getattr(d, name)) is not str:
                raise LedgerError(f"receipt field {name} must be a string")
        for name in ("policy", "evidence"):
            if not isinstance(getattr(d, name), dict):
                raise LedgerError(f"receipt field {name} must be an object")
        if not isinstance(d.actions, list) or (d.parents is not None and not isinstance(d.parents, list)):
            raise LedgerError("receipt fields actions and parents must be lists")
        iid = d.incident_id
        if iid is not None and not is_receipt_id(iid):
            raise LedgerError(f"incident id {iid!r} is not urn:uuid:<uuid>")
        rid = d.receipt_id
        if rid is None:
            rid = iid if (d.kind == DETECTED and iid is not None) else new_receipt_id()
        elif not is_receipt_id(rid):
            raise LedgerError(f"receipt id {rid!r} is not urn:uuid:<uuid>")
        parents = d.parents
        if parents is None:
            parents = []
            if iid is not None and d.kind != DETECTED:
                last = batch_last.get(iid) or self._previous_of(iid)
                if last is None:
                    raise LedgerError(f"incident {iid} has no detection receipt; a {d.kind} receipt cannot start it")
                parents = [{"receipt_id": last[0], "leaf_sha256": last[1]}]
        return {
            "schema": SCHEMA,
            "receipt_id": rid,
            "ledger": origin,
            "seq": seq,
            "prev": prev,
            "incident_id": iid,
            "kind": d.kind,
            "incident_type": d.incident_type,
            "severity": d.severity,
            "service": d.service,
            "region": d.region,
            "source_signal": d.source_signal,
            "summary": d.summary,
            "parents": parents,
            "observed_at": _iso(int(d.observed_at_ms)),
            "recorded_at": _iso(int(d.recorded_at_ms)),
            "actor": d.actor,
            "policy": d.policy,
            "evidence": d.evidence,
            "actions": d.actions,
            "key_id": key_id,
        }

    def _check_rotation(self, payload: dict[str, Any], key_id: str, keys: SignerSource) -> str:
        ev = payload["evidence"]
        new_id = ev.get("new_key_id") if isinstance(ev, dict) else None
        if not isinstance(new_id, str) or new_id == key_id:
            raise LedgerError("a key.rotated receipt must name a new key (evidence.new_key_id)")
        if ev.get("old_key_id", key_id) != key_id:
            raise LedgerError(f"the signing key changed meanwhile (now {key_id}, not {ev.get('old_key_id')}); rotate again")
        new_signer = keys.signer(new_id)  # the new key must be usable before the ledger switches to it
        if base64.b64encode(new_signer.public_key).decode("ascii") != ev.get("new_public_key"):
            raise LedgerError("key.rotated evidence.new_public_key does not match the new key")
        return new_id

    def _insert_checkpoint(self, signer: Signer, origin: str, size: int, root: bytes, now_ms: int) -> bytes:
        note = sign_note(Checkpoint(origin, size, root).text(), signer.name, signer.key_id, signer.sign)
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoints (size, root, key_id, written_at_ms, note) VALUES (?, ?, ?, ?, ?)",
            (size, root, signer.key_id_hex, now_ms, note),
        )
        return note

    def write_checkpoint(self, keys: SignerSource, now_ms: int) -> SignedCheckpoint | None:
        """Sign a checkpoint of the current size if the latest one is older (idempotent).

        Every append batch already writes one; this is for callers that want a fresh one on
        demand or on a timer. Returns None for an empty ledger.
        """
        with self._write():
            size, _ = self._size_locked()
            if size == 0:
                return None
            row = self._db.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
            if row is not None:
                return parse_signed_checkpoint(bytes(row[0]))
            key_id = self._meta_get("current_key_id")
            origin = self._meta_get("origin")
            if key_id is None or origin is None:
                raise LedgerError(f"{self.path}: ledger is not bound to a key store yet")
            signer = keys.signer(key_id)
            root = range_hash(self._node_locked, 0, size)
            note = self._insert_checkpoint(signer, origin, size, root, now_ms)
        return parse_signed_checkpoint(note)

    def record_export(self, size: int, now_ms: int) -> int | None:
        """Remember that a checkpoint of ``size`` left the machine in an export; returns the
        previous exported size (the one the new export proves consistency from)."""
        with self._write():
            row = self._db.execute("SELECT size FROM exports ORDER BY id DESC LIMIT 1").fetchone()
            self._db.execute("INSERT INTO exports (size, exported_at_ms) VALUES (?, ?)", (size, now_ms))
        return None if row is None else int(row[0])

    def last_export_size(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT size FROM exports ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else int(row[0])

    # -- reading --------------------------------------------------------------------------------------
    def size(self) -> int:
        with self._lock:
            return self._size_locked()[0]

    def get(self, seq: int) -> StoredReceipt | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM receipts WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else StoredReceipt.from_row(row)

    def iter_receipts(self, start: int = 0, end: int | None = None) -> Iterator[StoredReceipt]:
        """Receipts with ``start <= seq < end`` in order, fetched in chunks."""
        pos = start
        while True:
            hi = pos + _FETCH if end is None else min(end, pos + _FETCH)
            if hi <= pos:
                return
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {_COLS} FROM receipts WHERE seq >= ? AND seq < ? ORDER BY seq", (pos, hi)
                ).fetchall()
            for row in rows:
                yield StoredReceipt.from_row(row)
            if len(rows) < hi - pos:
                return
            pos = hi

    def raw_envelopes(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(seq, envelope bytes)`` for ``start <= seq < end``: the verifier's input."""
        with self._lock:
            return [
                (r[0], bytes(r[1]))
                for r in self._db.execute("SELECT seq, envelope FROM receipts WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end))
            ]

    def stored_rows(self, start: int, end: int) -> list[tuple[Any, ...]]:
        """``(seq, envelope, receipt_id, incident_id, kind, observed_at_ms, recorded_at_ms, key_id,
        leaf_hash)`` for ``start <= seq < end``: the verifier's input, with the unsigned columns it
        checks against the signed envelope."""
        with self._lock:
            return [
                (r[0], bytes(r[8]), r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]))
                for r in self._db.execute(f"SELECT {_COLS} FROM receipts WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end))
            ]

    def incident_receipts(self, incident_id: str) -> list[StoredReceipt]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLS} FROM receipts WHERE incident_id = ? ORDER BY seq", (incident_id,)).fetchall()
        return [StoredReceipt.from_row(r) for r in rows]

    def rotation_receipts(self) -> list[StoredReceipt]:
        """Every ``key.rotated`` receipt, in order (a partial index keeps this instant)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLS} FROM receipts WHERE kind = 'key.rotated' ORDER BY seq").fetchall()
        return [StoredReceipt.from_row(r) for r in rows]

    def receipts_by_ids(self, receipt_ids: Sequence[str]) -> dict[str, StoredReceipt]:
        out: dict[str, StoredReceipt] = {}
        with self._lock:
            for rid in receipt_ids:
                row = self._db.execute(f"SELECT {_COLS} FROM receipts WHERE receipt_id = ?", (rid,)).fetchone()
                if row is not None:
                    out[rid] = StoredReceipt.from_row(row)
        return out

    def non_incident_receipts(self, since_ms: int | None = None) -> list[StoredReceipt]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM receipts WHERE incident_id IS NULL AND observed_at_ms >= ? ORDER BY seq",
                (since_ms if since_ms is not None else -(2**62),),
            ).fetchall()
        return [StoredReceipt.from_row(r) for r in rows]

    def incident_ids(self, since_ms: int | None = None, include_unresolved: bool = True) -> list[str]:
        """Incidents with activity at or after ``since_ms`` (and, by default, every unresolved one)."""
        sql = "SELECT incident_id, MIN(seq) FROM receipts WHERE incident_id IS NOT NULL GROUP BY incident_id"
        args: tuple[Any, ...] = ()
        if since_ms is not None:
            cond = "MAX(observed_at_ms) >= ?"
            if include_unresolved:
                cond += " OR SUM(kind = 'recovery.verified') = 0"
            sql += f" HAVING {cond}"
            args = (since_ms,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY MIN(seq)", args).fetchall()
        return [r[0] for r in rows]

    def _find(self, column: str, text: str) -> list[str]:
        try:
            urn, exact = parse_id_query(text)
        except IdError as exc:
            raise ReceiptNotFound(str(exc)) from None
        with self._lock:
            if exact:
                rows = self._db.execute(f"SELECT DISTINCT {column} FROM receipts WHERE {column} = ?", (urn,)).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT DISTINCT {column} FROM receipts WHERE {column} >= ? AND {column} < ? LIMIT 6",
                    (urn, urn + "\uffff"),
                ).fetchall()
        return [r[0] for r in rows]

    def find_receipt(self, text: str) -> StoredReceipt:
        """The receipt named by a full id (with or without ``urn:uuid:``) or a unique 8+ hex prefix."""
        found = self._find("receipt_id", text)
        if not found:
            raise ReceiptNotFound(f"no receipt matches {text!r}")
        if len(found) > 1:
            raise AmbiguousId(f"{text!r} matches several receipts: {', '.join(found[:5])}; give more digits")
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM receipts WHERE receipt_id = ?", (found[0],)).fetchone()
        return StoredReceipt.from_row(row)

    def find_incident(self, text: str) -> str:
        """The incident id named by ``text`` (its id or prefix, or the id of any of its receipts)."""
        found = self._find("incident_id", text)
        if len(found) > 1:
            raise AmbiguousId(f"{text!r} matches several incidents: {', '.join(found[:5])}; give more digits")
        if found:
            return found[0]
        try:
            rec = self.find_receipt(text)
        except ReceiptNotFound:
            raise ReceiptNotFound(f"no incident matches {text!r}") from None
        if rec.incident_id is None:
            raise ReceiptNotFound(f"receipt {rec.receipt_id} ({rec.kind}) belongs to no incident")
        return rec.incident_id

    # -- checkpoints and the tree ------------------------------------------------------------------------
    def latest_checkpoint(self) -> bytes | None:
        """The newest signed checkpoint note (raw bytes), or None for an empty ledger."""
        with self._lock:
            row = self._db.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_at(self, size: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_notes(self) -> list[tuple[int, bytes]]:
        """``(size, note bytes)`` of every stored checkpoint, oldest first."""
        with self._lock:
            return [(r[0], bytes(r[1])) for r in self._db.execute("SELECT size, note FROM checkpoints ORDER BY size")]

    def _node_locked(self, level: int, index: int) -> bytes:
        if level == 0:
            row = self._db.execute("SELECT leaf_hash FROM receipts WHERE seq = ?", (index,)).fetchone()
        else:
            row = self._db.execute("SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, index)).fetchone()
        if row is None:
            raise LedgerCorrupt(f"{self.path}: tree node ({level}, {index}) is missing")
        return bytes(row[0])

    def node(self, level: int, index: int) -> bytes:
        with self._lock:
            return self._node_locked(level, index)

    def leaf_hashes(self, end: int | None = None) -> list[bytes]:
        """Stored leaf hashes of ``seq < end`` (as stored: the verifier recomputes its own)."""
        with self._lock:
            if end is None:
                rows = self._db.execute("SELECT leaf_hash FROM receipts ORDER BY seq")
            else:
                rows = self._db.execute("SELECT leaf_hash FROM receipts WHERE seq < ? ORDER BY seq", (end,))
            return [bytes(r[0]) for r in rows]

    def root(self, size: int) -> bytes:
        with self._lock:
            return EMPTY_ROOT if size == 0 else range_hash(self._node_locked, 0, size)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        """Audit path of ``seq`` in the tree of ``size``, from stored subtree hashes (O(log^2 n))."""
        with self._lock:
            return inclusion_path(self._node_locked, seq, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with self._lock:
            return consistency_path(self._node_locked, old_size, new_size)


def parse_urn(text: str) -> str:
    """``urn:uuid:`` form of a full id typed with or without the prefix."""
    urn, exact = parse_id_query(text)
    if not exact:
        raise IdError(f"{text!r} is not a full receipt id")
    return urn


__all__ = [
    "AmbiguousId",
    "KEY_ROTATED",
    "Ledger",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerNotFound",
    "ReceiptDraft",
    "ReceiptNotFound",
    "SCHEMA",
    "StoredReceipt",
    "URN",
    "parse_urn",
]
