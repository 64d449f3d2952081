"""Receipt verification (receipts.md section 5), with one exit code per kind of failure.

Per receipt: the envelope parses, has our payload type, is signed by a trusted key that was
valid at that ``seq``, and its payload is canonical and agrees with where and how it is stored
(``seq``, ``ledger``, ``key_id``), and the ledger's unsigned index columns (receipt and incident
ids, kind, times, key id, stored leaf hash) agree with the signed bytes: commands that look
receipts up by those columns, or build proofs from the stored leaf hashes, can then trust them. Per log: the newest checkpoint is signed by a trusted key,
every receipt is included in it, older checkpoints agree with the leaves, the pinned checkpoint
(kept outside the ledger) is consistent with it, the ``prev`` chain holds, parents exist with
matching digests, and each incident runs detected -> mitigation -> recovery with monotone times.

Verification never re-serializes an envelope: it hashes and checks the stored bytes. Whole-log
checks spread signature verification over worker processes (fork) when the log is large.
"""
from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Iterable, Sequence

import orjson

from engine.events import KIND_PHASE, NOTE

from .canonical import canonical_json_unchecked
from .dsse import PAYLOAD_TYPE, EnvelopeError, decode_envelope, encode_envelope
from .keys import TrustedKey, TrustSet
from .ledger import DETECTED, KEY_ROTATED, SCHEMA, Ledger, LedgerCorrupt, LedgerError
from .merkle import MerkleLevels, consistency_path, inclusion_path, leaf_hash, verify_consistency, verify_inclusion
from .note import NoteError, SignedCheckpoint, note_key_id, parse_signed_checkpoint


class FailureKind(Enum):
    """Every way verification can fail: (exit code, slug, what it means). The single table of
    verification exit codes; ``ggen incidents verify --help`` prints it."""

    ENVELOPE_MALFORMED = (10, "envelope-malformed", "stored bytes are not a well-formed DSSE envelope")
    PAYLOAD_TYPE = (11, "payload-type", "envelope payloadType is not the ggen receipt type")
    KEY_UNKNOWN = (12, "key-unknown", "signature keyid names no trusted key")
    SIGNATURE_INVALID = (13, "signature-invalid", "Ed25519 signature does not verify over PAE(type, payload)")
    KEY_OUTSIDE_WINDOW = (14, "key-outside-window", "signed by a trusted key outside its validity window of seqs")
    PAYLOAD_MALFORMED = (15, "payload-malformed", "payload is not canonical JSON of the receipt schema")
    PAYLOAD_MISMATCH = (16, "payload-mismatch", "payload seq/ledger/key_id disagree with the envelope or its position")
    CHECKPOINT_MALFORMED = (17, "checkpoint-malformed", "checkpoint note missing or malformed, or for another origin")
    CHECKPOINT_UNTRUSTED = (18, "checkpoint-untrusted", "checkpoint not validly signed by a key trusted at its size")
    INCLUSION_FAILED = (19, "inclusion-failed", "receipt not included in the signed checkpoint's tree")
    PINNED_INCONSISTENT = (20, "pinned-inconsistent", "log is not an extension of the pinned (trusted) checkpoint")
    TRUNCATED = (21, "truncated", "log holds fewer receipts than a signed or pinned checkpoint commits to")
    PREV_CHAIN = (22, "prev-chain", "prev is not the leaf hash of the receipt before")
    PARENT_MISSING = (23, "parent-missing", "a parent receipt does not exist")
    PARENT_DIGEST = (24, "parent-digest", "a parent's leaf digest does not match")
    INCIDENT_ORDER = (25, "incident-order", "incident kinds out of order or times not monotone")
    CHECKPOINT_HISTORY = (26, "checkpoint-history", "an older stored checkpoint disagrees with the receipts")
    EXPORT_MALFORMED = (27, "export-malformed", "export file torn, edited or not a ggen export")
    LEDGER_UNREADABLE = (28, "ledger-unreadable", "ledger file missing or unreadable")
    NO_TRUSTED_KEY = (29, "no-trusted-key", "no public key to verify with")
    STORED_MISMATCH = (30, "stored-mismatch", "an unsigned ledger column (ids, kind, times, key id, leaf hash) disagrees with the signed envelope")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def slug(self) -> str:
        return self.value[1]

    @property
    def meaning(self) -> str:
        return self.value[2]


def exit_code_table() -> str:
    """The exit-code table as text (for --help and docs)."""
    rows = ["0   ok: everything checked verifies"]
    rows += [f"{k.code}  {k.slug}: {k.meaning}" for k in FailureKind]
    return "\n".join(rows)


@dataclass(frozen=True)
class Failure:
    """One verification failure, attributed to a receipt when it concerns one."""

    kind: FailureKind
    reason: str
    seq: int | None = None
    receipt_id: str | None = None

    def line(self) -> str:
        where = ""
        if self.seq is not None:
            where = f"seq {self.seq}"
            if self.receipt_id:
                where += f" {self.receipt_id}"
            where += ": "
        return f"[{self.kind.slug}] {where}{self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.kind.code, "kind": self.kind.slug, "seq": self.seq, "receipt_id": self.receipt_id, "reason": self.reason}


@dataclass(slots=True)
class Facts:
    """What the log-level checks need from one receipt whose envelope verified."""

    seq: int
    leaf: bytes
    receipt_id: str
    incident_id: str | None
    kind: str
    observed_at_ms: int
    prev: str | None
    parents: tuple[tuple[str, str], ...]
    new_key: tuple[str, bytes] | None = None  # for key.rotated: (name, public key)


@dataclass
class VerifyReport:
    """The outcome: what was checked and every failure found, first failure first."""

    scope: str
    origin: str | None = None
    checked: int = 0
    checkpoint_size: int | None = None
    checkpoint_root: bytes | None = None
    pinned_size: int | None = None
    failures: list[Failure] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    receipt_ids: dict[int, str] = field(default_factory=dict)
    _seen: set[Failure] = field(default_factory=set, repr=False)
    _by_seq: dict[int | None, list[Failure]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else self.failures[0].kind.code

    def failures_for(self, seq: int) -> list[Failure]:
        return list(self._by_seq.get(seq, ()))

    def add(self, kind: FailureKind, reason: str, seq: int | None = None, receipt_id: str | None = None) -> None:
        f = Failure(kind, reason, seq, receipt_id)
        if f not in self._seen:
            self._seen.add(f)
            self.failures.append(f)
            self._by_seq.setdefault(seq, []).append(f)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "scope": self.scope,
            "origin": self.origin,
            "checked": self.checked,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": None if self.checkpoint_root is None else base64.b64encode(self.checkpoint_root).decode("ascii"),
            "pinned_size": self.pinned_size,
            "failures": [f.to_json() for f in self.failures],
        }


# -- one receipt ------------------------------------------------------------------------------------
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_PAE_PREFIX = b"DSSEv1 %d %s " % (len(PAYLOAD_TYPE.encode()), PAYLOAD_TYPE.encode())
_STR = frozenset({str})
_STR_OR_NONE = frozenset({str, type(None)})
_REQUIRED: dict[str, frozenset[type]] = {
    "schema": _STR,
    "receipt_id": _STR,
    "ledger": _STR,
    "seq": frozenset({int}),
    "prev": _STR_OR_NONE,
    "incident_id": _STR_OR_NONE,
    "kind": _STR,
    "incident_type": _STR_OR_NONE,
    "severity": _STR_OR_NONE,
    "parents": frozenset({list}),
    "observed_at": _STR,
    "recorded_at": _STR,
    "actor": _STR,
    "policy": frozenset({dict}),
    "evidence": frozenset({dict}),
    "actions": frozenset({list}),
    "key_id": _STR,
}
_MISSING = object()
_EPOCH = datetime(1970, 1, 1)


def time_ms(text: str) -> int:
    """Epoch ms of an RFC 3339 UTC ``...Z`` time (ValueError otherwise)."""
    if not _TIME_RE.match(text):
        raise ValueError(f"time {text[:40]!r} is not RFC 3339 UTC with a Z")
    # integer arithmetic on the difference from the epoch: exact (a float timestamp * 1000 can
    # round .123 down to 122) and as fast as the float version
    d = datetime.fromisoformat(text[:-1]) - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1000 + d.microseconds // 1000


def _payload_facts(obj: Any, seq: int, leaf: bytes) -> Facts:
    """Check a decoded payload's schema; raise ValueError with the reason."""
    if not isinstance(obj, dict):
        raise ValueError("payload is not a JSON object")
    for name, types in _REQUIRED.items():
        v = obj.get(name, _MISSING)
        if type(v) not in types:  # parsed JSON holds exact types (and bool is not int here)
            raise ValueError(f"payload lacks field {name!r}" if v is _MISSING else f"payload field {name!r} has the wrong type")
    if obj["schema"] != SCHEMA:
        raise ValueError(f"payload schema {obj['schema'][:40]!r} is not {SCHEMA}")
    prev = obj["prev"]
    if prev is not None and not _HEX64_RE.match(prev):
        raise ValueError("payload prev is not a hex SHA-256")
    parents = []
    for p in obj["parents"]:
        if not isinstance(p, dict) or not isinstance(p.get("receipt_id"), str) or not isinstance(p.get("leaf_sha256"), str):
            raise ValueError("payload parents entry is not {receipt_id, leaf_sha256}")
        parents.append((p["receipt_id"], p["leaf_sha256"]))
    new_key = None
    if obj["kind"] == KEY_ROTATED:
        ev = obj["evidence"]
        try:
            pub = base64.b64decode(ev["new_public_key"], validate=True)
            if len(pub) != 32 or note_key_id(obj["ledger"], pub).hex() != ev["new_key_id"]:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise ValueError("key.rotated evidence does not name a valid new Ed25519 key") from None
        new_key = (obj["ledger"], pub)
    return Facts(
        seq=seq,
        leaf=leaf,
        receipt_id=obj["receipt_id"],
        incident_id=obj["incident_id"],
        kind=obj["kind"],
        observed_at_ms=time_ms(obj["observed_at"]),
        prev=prev,
        parents=tuple(parents),
        new_key=new_key,
    )


def check_envelope(
    raw: bytes, seq: int, origin: str, trust: TrustSet, stored: Sequence[Any] | None = None
) -> tuple[bytes, Facts | None, Failure | None]:
    """Verify one stored envelope at ``seq``: returns (leaf hash of the bytes, facts, failure).

    ``stored``: the ledger's unsigned columns of that row, ``(receipt_id, incident_id, kind,
    observed_at_ms, recorded_at_ms, key_id, leaf_hash)``; any that disagrees with the verified
    envelope is a STORED_MISMATCH (returned with the facts, which are signed and still usable)."""
    leaf = leaf_hash(raw)
    try:
        env = decode_envelope(raw)
    except EnvelopeError as exc:
        return leaf, None, Failure(FailureKind.ENVELOPE_MALFORMED, str(exc), seq)
    if encode_envelope(env.payload_type, env.payload, env.keyid, env.sig) != raw:
        return leaf, None, Failure(FailureKind.ENVELOPE_MALFORMED, "envelope bytes are not in canonical form (duplicate keys, spacing or key order)", seq)
    if env.payload_type != PAYLOAD_TYPE:
        return leaf, None, Failure(FailureKind.PAYLOAD_TYPE, f"payloadType is {env.payload_type[:60]!r}, expected {PAYLOAD_TYPE}", seq)
    key = trust.get(env.keyid)
    if key is None:
        return leaf, None, Failure(FailureKind.KEY_UNKNOWN, f"signed with keyid {env.keyid[:20]!r}, which is not a trusted key", seq)
    if not key.verify(env.sig, _PAE_PREFIX + b"%d " % len(env.payload) + env.payload):
        return leaf, None, Failure(FailureKind.SIGNATURE_INVALID, f"signature does not verify with key {key.key_id_hex}", seq)
    if not key.valid_at(seq):
        return leaf, None, Failure(
            FailureKind.KEY_OUTSIDE_WINDOW, f"key {key.key_id_hex} may sign seqs {key.window_text()}, not {seq}", seq
        )
    try:
        obj = orjson.loads(env.payload)
    except orjson.JSONDecodeError as exc:
        return leaf, None, Failure(FailureKind.PAYLOAD_MALFORMED, f"payload is not JSON ({exc})", seq)
    try:
        if canonical_json_unchecked(obj) != env.payload:
            raise ValueError("payload bytes are not canonical JSON")
        facts = _payload_facts(obj, seq, leaf)
    except (ValueError, TypeError, orjson.JSONEncodeError) as exc:
        rid = obj.get("receipt_id") if isinstance(obj, dict) and isinstance(obj.get("receipt_id"), str) else None
        return leaf, None, Failure(FailureKind.PAYLOAD_MALFORMED, str(exc), seq, rid)
    if obj["seq"] != seq:
        return leaf, None, Failure(
            FailureKind.PAYLOAD_MISMATCH, f"payload says seq {obj['seq']} but it is stored at seq {seq} (replayed or moved)", seq, facts.receipt_id
        )
    if obj["ledger"] != origin:
        return leaf, None, Failure(
            FailureKind.PAYLOAD_MISMATCH, f"payload is for ledger {obj['ledger'][:60]!r}, not {origin!r}", seq, facts.receipt_id
        )
    if obj["key_id"] != env.keyid:
        return leaf, None, Failure(
            FailureKind.PAYLOAD_MISMATCH, f"payload key_id {obj['key_id'][:20]!r} differs from the envelope keyid {env.keyid!r}", seq, facts.receipt_id
        )
    if stored is not None and not (  # fast path: every column agrees (the detailed check says which does not)
        stored[6] == leaf
        and stored[2] == facts.kind
        and stored[0] == facts.receipt_id
        and stored[1] == facts.incident_id
        and stored[3] == facts.observed_at_ms
        and stored[5] == env.keyid
        and obj["recorded_at"] == obj["observed_at"]
        and stored[4] == stored[3]
    ):
        why = _stored_disagreement(stored, leaf, facts, obj, env.keyid)
        if why is not None:
            return leaf, facts, Failure(FailureKind.STORED_MISMATCH, why, seq, facts.receipt_id)
    return leaf, facts, None


def _stored_disagreement(stored: Sequence[Any], leaf: bytes, facts: Facts, obj: dict[str, Any], keyid: str) -> str | None:
    """Why the unsigned columns of a row disagree with its verified envelope, or None."""
    rid, iid, kind, observed_ms, recorded_ms, key_id, stored_leaf = stored
    if stored_leaf != leaf:
        shown = bytes(stored_leaf).hex()[:16] if isinstance(stored_leaf, (bytes, bytearray, memoryview)) else repr(stored_leaf)[:20]
        return f"stored leaf hash {shown}... is not the hash of the envelope ({leaf.hex()[:16]}...)"
    for name, column, signed in (
        ("receipt_id", rid, facts.receipt_id),
        ("incident_id", iid, facts.incident_id),
        ("kind", kind, facts.kind),
        ("key_id", key_id, keyid),
    ):
        if column != signed:
            return f"stored column {name} {str(column)[:60]!r} disagrees with the signed payload ({str(signed)[:60]!r})"
    if observed_ms != facts.observed_at_ms:
        return f"stored column observed_at_ms {str(observed_ms)[:20]} disagrees with the signed observed_at {obj['observed_at']}"
    try:
        recorded = facts.observed_at_ms if obj["recorded_at"] == obj["observed_at"] else time_ms(obj["recorded_at"])
    except ValueError:
        return f"signed recorded_at {obj['recorded_at'][:40]!r} is not RFC 3339 UTC"
    if recorded_ms != recorded:
        return f"stored column recorded_at_ms {str(recorded_ms)[:20]} disagrees with the signed recorded_at {obj['recorded_at']}"
    return None


# -- checkpoints -------------------------------------------------------------------------------------
def check_checkpoint(raw: bytes | None, origin: str, trust: TrustSet, what: str = "checkpoint") -> tuple[SignedCheckpoint | None, Failure | None]:
    """Parse a checkpoint note and check it is for ``origin`` and signed by a key trusted at size-1."""
    if raw is None:
        return None, Failure(FailureKind.CHECKPOINT_MALFORMED, f"there is no {what}")
    try:
        cp = parse_signed_checkpoint(raw)
    except NoteError as exc:
        return None, Failure(FailureKind.CHECKPOINT_MALFORMED, f"{what}: {exc}")
    if cp.origin != origin:
        return None, Failure(FailureKind.CHECKPOINT_MALFORMED, f"{what} is for origin {cp.origin[:60]!r}, not {origin!r}")
    if cp.size == 0:
        return None, Failure(FailureKind.CHECKPOINT_MALFORMED, f"{what} is of an empty tree")
    data = cp.note.text.encode("utf-8")
    known = False
    for sig in cp.note.signatures:
        key = trust.get(sig.key_id.hex())
        if key is None or key.name != sig.name:
            continue  # signatures from unknown keys are ignored, as signed-note verifiers do
        known = True
        if not key.verify(sig.sig, data):
            return None, Failure(FailureKind.CHECKPOINT_UNTRUSTED, f"{what} signature by key {key.key_id_hex} does not verify")
        if not key.valid_at(cp.size - 1):
            return None, Failure(
                FailureKind.CHECKPOINT_UNTRUSTED, f"{what} of size {cp.size} is signed by key {key.key_id_hex}, valid only for seqs {key.window_text()}"
            )
        return cp, None
    hint = "" if known else f" (signed by {', '.join(s.name + '/' + s.key_id.hex() for s in cp.note.signatures)[:120]})"
    return None, Failure(FailureKind.CHECKPOINT_UNTRUSTED, f"{what} is not signed by any trusted key{hint}")


# -- trust from the log ---------------------------------------------------------------------------------
def apply_rotations(trust: TrustSet, origin: str, rotations: Iterable[tuple[int, bytes]], report: VerifyReport | None = None) -> None:
    """Extend ``trust`` along verified ``key.rotated`` receipts ``(seq, envelope)`` in seq order."""
    for seq, raw in sorted(rotations, key=lambda r: r[0]):
        _, facts, fail = check_envelope(raw, seq, origin, trust)
        if fail is not None:
            if report is not None:
                report.add(fail.kind, fail.reason, seq, fail.receipt_id)
            continue
        if facts is None or facts.kind != KEY_ROTATED or facts.new_key is None:
            continue
        env = decode_envelope(raw)
        trust.apply_rotation(env.keyid, seq, facts.new_key[0], facts.new_key[1])


# -- log-level checks over facts -------------------------------------------------------------------------
def check_links(
    report: VerifyReport,
    selected: Sequence[Facts],
    leaf_of: dict[int, bytes],
    by_id: dict[str, Facts],
    context: dict[str | None, list[Facts]] | None = None,
) -> None:
    """prev chain, parents, and per-incident order for ``selected`` receipts.

    ``leaf_of`` maps seq -> leaf hash for every receipt whose bytes we hold, ``by_id`` maps
    receipt ids to facts (for parents), ``context`` the full receipt list of each incident (for
    order; defaults to ``selected`` grouped by incident).
    """
    for f in selected:
        if f.seq == 0:
            if f.prev is not None:
                report.add(FailureKind.PREV_CHAIN, "the first receipt must have prev null", f.seq, f.receipt_id)
        else:
            before = leaf_of.get(f.seq - 1)
            if before is not None and f.prev != before.hex():
                report.add(FailureKind.PREV_CHAIN, f"prev {str(f.prev)[:16]}... is not the leaf hash of seq {f.seq - 1}", f.seq, f.receipt_id)
            if f.prev is None:
                report.add(FailureKind.PREV_CHAIN, "prev is null but this is not the first receipt", f.seq, f.receipt_id)
        for rid, digest in f.parents:
            parent = by_id.get(rid)
            if parent is None:
                report.add(FailureKind.PARENT_MISSING, f"parent {rid[:48]} is not in the log", f.seq, f.receipt_id)
                continue
            if parent.leaf.hex() != digest:
                report.add(FailureKind.PARENT_DIGEST, f"parent {rid} has leaf hash {parent.leaf.hex()[:16]}..., receipt says {digest[:16]}...", f.seq, f.receipt_id)
            elif parent.seq >= f.seq:
                report.add(FailureKind.INCIDENT_ORDER, f"parent {rid} comes after this receipt (seq {parent.seq})", f.seq, f.receipt_id)
            elif parent.incident_id != f.incident_id:
                report.add(FailureKind.INCIDENT_ORDER, f"parent {rid} belongs to another incident", f.seq, f.receipt_id)
    if context is None:
        context = {}
        for f in selected:
            context.setdefault(f.incident_id, []).append(f)
    wanted = {f.seq for f in selected}
    for iid, items in context.items():
        if iid is None:
            continue
        _check_incident_order(report, iid, sorted(items, key=lambda x: x.seq), wanted)


# Kinds that annotate an incident and may come at any point after its detection, even after
# resolution (a late note, the effectiveness sample of an action, an acknowledgement).
ANNOTATION_KINDS = frozenset({NOTE, "mitigation.assessed", "incident.acknowledged"})


def _check_incident_order(report: VerifyReport, iid: str, items: list[Facts], wanted: set[int]) -> None:
    """detected first; phases (engine.events.KIND_PHASE) never go backwards; times monotone."""

    def add(kind: FailureKind, reason: str, f: Facts) -> None:
        if f.seq in wanted:
            report.add(kind, reason, f.seq, f.receipt_id)

    first = items[0]
    if first.kind != DETECTED or first.receipt_id != iid:
        add(FailureKind.INCIDENT_ORDER, f"incident {iid} does not start with its incident.detected receipt", first)
    last_time: int | None = None
    top_phase, top_kind = -1, ""
    for f in items:
        if f is not first and f.kind == DETECTED:
            add(FailureKind.INCIDENT_ORDER, f"second incident.detected for incident {iid}", f)
        phase = KIND_PHASE.get(f.kind)
        if phase is None:
            add(FailureKind.INCIDENT_ORDER, f"kind {f.kind[:40]!r} is not an incident event", f)
        elif f.kind not in ANNOTATION_KINDS:
            if phase < top_phase:
                add(FailureKind.INCIDENT_ORDER, f"{f.kind} comes after {top_kind}", f)
            elif phase > top_phase:
                top_phase, top_kind = phase, f.kind
        if last_time is not None and f.observed_at_ms < last_time:
            add(FailureKind.INCIDENT_ORDER, "observed_at goes back in time within the incident", f)
        last_time = f.observed_at_ms if last_time is None else max(last_time, f.observed_at_ms)
        if f is not first and not f.parents:
            add(FailureKind.INCIDENT_ORDER, f"{f.kind} names no parent receipt", f)


# -- parallel per-receipt checks ---------------------------------------------------------------------------
_JOB: dict[str, Any] = {}
PARALLEL_MIN = 4000


def _trust_state(trust: TrustSet) -> list[tuple[str, bytes, bytes, int, int | None]]:
    return [(k.name, k.key_id, k.public_key, k.from_seq, k.to_seq) for k in trust.keys.values()]


def _trust_from_state(state: list[tuple[str, bytes, bytes, int, int | None]]) -> TrustSet:
    return TrustSet(TrustedKey(*s) for s in state)


def _check_items(items: Iterable[Sequence[Any]], origin: str, trust: TrustSet) -> list[tuple[int, bytes, Facts | None, Failure | None]]:
    """``items``: ``(seq, envelope)`` (an export) or ledger rows ``(seq, envelope, *columns)``."""
    return [(it[0], *check_envelope(it[1], it[0], origin, trust, it[2:] if len(it) > 2 else None)) for it in items]


def _worker_range(bounds: tuple[int, int]) -> list[tuple[int, bytes, tuple[Any, ...] | None, Failure | None]]:
    job = _JOB
    trust = job.get("trust_obj")
    if trust is None:
        trust = job["trust_obj"] = _trust_from_state(job["trust"])
    lo, hi = bounds
    if "path" in job:
        ledger = job.get("ledger_obj")
        if ledger is None:
            ledger = job["ledger_obj"] = Ledger(job["path"], readonly=True)
        items: Iterable[Sequence[Any]] = ledger.stored_rows(lo, hi)
    else:
        items = job["items"][lo:hi]
    # plain tuples cross the process boundary several times faster than dataclass instances
    return [
        (seq, leaf, None if f is None else (f.receipt_id, f.incident_id, f.kind, f.observed_at_ms, f.prev, f.parents, f.new_key), fail)
        for seq, leaf, f, fail in _check_items(items, job["origin"], trust)
    ]


def worker_count() -> int:
    """Processes to use for signature checks (all cores, at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def check_many(
    origin: str,
    trust: TrustSet,
    *,
    items: Sequence[tuple[int, bytes]] | None = None,
    ledger: Ledger | None = None,
    size: int = 0,
    workers: int | None = None,
) -> list[tuple[int, bytes, Facts | None, Failure | None]]:
    """Per-receipt checks over ``items`` (in memory) or seqs ``[0, size)`` of ``ledger``, in seq order."""
    n = len(items) if items is not None else size
    workers = worker_count() if workers is None else workers
    if workers <= 1 or n < PARALLEL_MIN or not _fork_available():
        if items is None:
            assert ledger is not None
            out = []
            for lo in range(0, n, 5000):
                out.extend(_check_items(ledger.stored_rows(lo, min(n, lo + 5000)), origin, trust))
            return out
        return _check_items(items, origin, trust)
    import multiprocessing

    chunk = max(500, n // (workers * 8))
    bounds = [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    _JOB.clear()
    _JOB.update({"origin": origin, "trust": _trust_state(trust)})
    if items is not None:
        _JOB["items"] = items
    else:
        assert ledger is not None
        _JOB["path"] = str(ledger.path)
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers) as pool:
            out = []
            for part in pool.imap(_worker_range, bounds):
                out.extend((seq, leaf, None if t is None else Facts(seq, leaf, *t), fail) for seq, leaf, t, fail in part)
        return out
    finally:
        _JOB.clear()


def _fork_available() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


# -- verifying a ledger -----------------------------------------------------------------------------------------
def _pinned(report: VerifyReport, pinned_raw: bytes | None, origin: str, trust: TrustSet) -> SignedCheckpoint | None:
    if pinned_raw is None:
        return None
    pinned, fail = check_checkpoint(pinned_raw, origin, trust, "pinned checkpoint")
    if fail is not None:
        report.add(fail.kind, fail.reason)
        return None
    assert pinned is not None
    report.pinned_size = pinned.size
    return pinned


def verify_ledger(
    ledger: Ledger,
    anchors: TrustSet,
    *,
    receipt_seqs: Sequence[int] | None = None,
    scope: str = "all",
    pinned: bytes | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify the whole ledger (``receipt_seqs`` None) or just the given receipts."""
    report = VerifyReport(scope=scope)
    if not anchors:
        report.add(FailureKind.NO_TRUSTED_KEY, "no trusted public key (run `ggen keys init`, or pass --public-key FILE)")
        return report
    try:
        with ledger.snapshot():
            origin = ledger.meta("origin")
            if origin is None:
                report.add(FailureKind.LEDGER_UNREADABLE, f"{ledger.path}: ledger has no origin (never written)")
                return report
            report.origin = origin
            size = ledger.size()
            cp_raw = ledger.latest_checkpoint()
            trust = anchors.copy()
            rotations = [(r.seq, r.envelope) for r in ledger.rotation_receipts()]
            apply_rotations(trust, origin, rotations, report)
            if size == 0 and cp_raw is None:
                _pinned_empty(report, pinned, origin, trust)
                return report
            cp, fail = check_checkpoint(cp_raw, origin, trust)
            if fail is not None:
                report.add(fail.kind, fail.reason if cp_raw is not None else f"the ledger holds {size} receipts but no signed checkpoint")
            if cp is not None:
                report.checkpoint_size, report.checkpoint_root = cp.size, cp.root
                if cp.size > size:
                    report.add(FailureKind.TRUNCATED, f"the signed checkpoint commits to {cp.size} receipts but the ledger holds {size}")
            pin = _pinned(report, pinned, origin, trust)
            if receipt_seqs is None:
                _verify_all(report, ledger, origin, trust, size, cp, pin, workers)
            else:
                _verify_some(report, ledger, origin, trust, size, cp, pin, sorted(set(receipt_seqs)))
    except LedgerError as exc:
        report.add(FailureKind.LEDGER_UNREADABLE, str(exc))
    except Exception as exc:  # sqlite3 errors from a damaged file
        import sqlite3

        if isinstance(exc, sqlite3.Error):
            report.add(FailureKind.LEDGER_UNREADABLE, f"{ledger.path}: {exc}")
        else:
            raise
    return report


def _pinned_empty(report: VerifyReport, pinned: bytes | None, origin: str, trust: TrustSet) -> None:
    pin = _pinned(report, pinned, origin, trust)
    if pin is not None:
        report.add(FailureKind.TRUNCATED, f"the pinned checkpoint commits to {pin.size} receipts but the ledger is empty")


def _verify_all(
    report: VerifyReport,
    ledger: Ledger,
    origin: str,
    trust: TrustSet,
    size: int,
    cp: SignedCheckpoint | None,
    pin: SignedCheckpoint | None,
    workers: int | None,
) -> None:
    results = check_many(origin, trust, ledger=ledger, size=size, workers=workers)
    report.checked = len(results)
    leaves: list[bytes] = []
    facts: list[Facts] = []
    seen_ids: dict[str, int] = {}
    for seq, leaf, f, fail in results:
        report.seqs.append(seq)
        leaves.append(leaf)
        if fail is not None:
            report.add(fail.kind, fail.reason, seq, fail.receipt_id)
        if f is not None:
            report.receipt_ids[seq] = f.receipt_id
            if f.receipt_id in seen_ids:
                report.add(FailureKind.PAYLOAD_MISMATCH, f"receipt id already used at seq {seen_ids[f.receipt_id]}", seq, f.receipt_id)
            else:
                seen_ids[f.receipt_id] = seq
            facts.append(f)
    if len(leaves) != size or (leaves and results[-1][0] != size - 1):
        report.add(FailureKind.LEDGER_UNREADABLE, f"seq numbers are not contiguous 0..{size - 1}")
        return
    tree = MerkleLevels(leaves)
    if cp is not None and cp.size <= size:
        if tree.root(cp.size) != cp.root:
            report.add(FailureKind.INCLUSION_FAILED, _locate_mismatch(ledger, leaves, cp.size))
        for seq in range(cp.size, size):
            report.add(FailureKind.INCLUSION_FAILED, f"not covered by the newest signed checkpoint (size {cp.size})", seq, report.receipt_ids.get(seq))
        for old_size, note in ledger.checkpoint_notes():
            try:
                old = parse_signed_checkpoint(note)
                agrees = old.size == old_size and old_size <= size and tree.root(old_size) == old.root
            except NoteError:
                agrees = False
            if not agrees:
                report.add(FailureKind.CHECKPOINT_HISTORY, f"stored checkpoint of size {old_size} disagrees with receipts 0..{old_size - 1}")
                break
    if pin is not None:
        if pin.size > size:
            report.add(FailureKind.TRUNCATED, f"the pinned checkpoint commits to {pin.size} receipts but the ledger holds {size}")
        elif tree.root(pin.size) != pin.root:
            report.add(
                FailureKind.PINNED_INCONSISTENT,
                f"receipts 0..{pin.size - 1} are not the ones the pinned checkpoint signed (history rewritten)",
            )
    leaf_of = dict(enumerate(leaves))
    by_id = {f.receipt_id: f for f in facts}
    check_links(report, facts, leaf_of, by_id)


def _locate_mismatch(ledger: Ledger, leaves: list[bytes], size: int) -> str:
    stored = ledger.leaf_hashes(size)
    for seq, (mine, theirs) in enumerate(zip(leaves, stored)):
        if mine != theirs:
            return f"receipts do not hash to the signed checkpoint root (size {size}); seq {seq} changed after it was written"
    return f"receipts 0..{size - 1} do not hash to the signed checkpoint root (reordered, replaced or removed)"


def _verify_some(
    report: VerifyReport,
    ledger: Ledger,
    origin: str,
    trust: TrustSet,
    size: int,
    cp: SignedCheckpoint | None,
    pin: SignedCheckpoint | None,
    seqs: list[int],
) -> None:
    leaf_of: dict[int, bytes] = {}
    facts: list[Facts] = []
    nodes = _EnvelopeNodes(ledger)
    for seq in seqs:
        rec = ledger.get(seq)
        if rec is None:
            report.add(FailureKind.LEDGER_UNREADABLE, f"seq {seq} is not in the ledger", seq)
            continue
        report.seqs.append(seq)
        report.checked += 1
        # the receipt's own columns are checked against its envelope (STORED_MISMATCH, as --all does)
        leaf, f, fail = check_envelope(rec.envelope, seq, origin, trust, _columns(rec))
        rid = f.receipt_id if f is not None else rec.receipt_id  # name it by the signed id when there is one
        report.receipt_ids[seq] = rid
        leaf_of[seq] = leaf
        if fail is not None:
            report.add(fail.kind, fail.reason, seq, rid)
        if f is not None:
            facts.append(f)
        if cp is not None:
            if seq >= cp.size:
                report.add(FailureKind.INCLUSION_FAILED, f"not covered by the newest signed checkpoint (size {cp.size})", seq, rid)
            else:
                problem = _inclusion_problem(ledger, nodes, leaf, seq, cp)
                if problem is not None:
                    report.add(FailureKind.INCLUSION_FAILED, problem, seq, rid)
        if seq > 0 and seq - 1 not in leaf_of:
            before = ledger.get(seq - 1)
            if before is not None:
                leaf_of[seq - 1] = leaf_hash(before.envelope)
    if cp is not None and pin is not None:
        if pin.size > cp.size:
            report.add(FailureKind.TRUNCATED, f"the pinned checkpoint commits to {pin.size} receipts but the ledger's checkpoint has {cp.size}")
        else:
            good = False
            for source in (ledger.node, nodes):  # stored leaf hashes, then leaves hashed from envelopes
                try:
                    good = verify_consistency(pin.size, cp.size, consistency_path(source, pin.size, cp.size), pin.root, cp.root)
                except LedgerCorrupt:
                    good = False
                if good:
                    break
            if not good:
                report.add(FailureKind.PINNED_INCONSISTENT, f"the log of size {cp.size} is not an extension of the pinned checkpoint of size {pin.size}")
    # parents and incident order: the incident receipts around the selection, decoded for context
    by_id: dict[str, Facts] = {f.receipt_id: f for f in facts}
    context: dict[str | None, list[Facts]] = {}
    for iid in {f.incident_id for f in facts if f.incident_id is not None}:
        for rec in ledger.incident_receipts(iid):
            ctx_facts = by_id.get(rec.receipt_id)
            if ctx_facts is None or ctx_facts.seq != rec.seq:
                ctx_facts = _unverified_facts(rec.envelope, rec.seq)
            if ctx_facts is not None:
                context.setdefault(iid, []).append(ctx_facts)
                by_id.setdefault(ctx_facts.receipt_id, ctx_facts)
    wanted_parents = {rid for f in facts for rid, _ in f.parents if rid not in by_id}
    for rid, rec in ledger.receipts_by_ids(sorted(wanted_parents)).items():
        pf = _unverified_facts(rec.envelope, rec.seq)
        if pf is not None:
            by_id[rid] = pf
    check_links(report, facts, leaf_of, by_id, context)


def _columns(rec: Any) -> tuple[Any, ...]:
    """A stored receipt's unsigned columns, in the order :func:`check_envelope` takes them."""
    return (rec.receipt_id, rec.incident_id, rec.kind, rec.observed_at_ms, rec.recorded_at_ms, rec.key_id, rec.leaf_hash)


def _inclusion_problem(ledger: Ledger, nodes: "_EnvelopeNodes", leaf: bytes, seq: int, cp: SignedCheckpoint) -> str | None:
    """Why ``leaf`` at ``seq`` is not shown included in ``cp``, or None.

    A proof is only a path to the signed root, so any path that reaches it proves inclusion. The
    path from the stored nodes is tried first; if it fails, the one whose leaves are hashed from
    the envelopes: a damaged leaf_hash column of a neighbour is then blamed on that neighbour
    alone (STORED_MISMATCH, as --all does), and an edited neighbour envelope on the neighbour."""
    error = None
    for source in (ledger.node, nodes):
        try:
            if verify_inclusion(leaf, seq, cp.size, inclusion_path(source, seq, cp.size), cp.root):
                return None
        except LedgerCorrupt as exc:
            error = exc
    if error is not None:
        return f"cannot build an inclusion proof ({error})"
    return f"inclusion proof against the checkpoint of size {cp.size} fails"


class _EnvelopeNodes:
    """Tree nodes for proofs: stored subtree hashes, but leaves hashed from the envelopes."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.leaves: dict[int, bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        if level:
            return self.ledger.node(level, index)
        got = self.leaves.get(index)
        if got is None:
            rec = self.ledger.get(index)
            if rec is None:
                raise LedgerCorrupt(f"{self.ledger.path}: receipt {index} is missing")
            got = self.leaves[index] = leaf_hash(rec.envelope)
        return got


def _unverified_facts(raw: bytes, seq: int) -> Facts | None:
    """Facts of a receipt outside the selection (its own checks belong to its own verification)."""
    try:
        env = decode_envelope(raw)
        return _payload_facts(orjson.loads(env.payload), seq, leaf_hash(raw))
    except (EnvelopeError, ValueError, TypeError, orjson.JSONDecodeError):
        return None
