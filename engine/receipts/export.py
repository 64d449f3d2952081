"""Exports of the ledger (receipts.md section 6) and their offline verification.

``json`` is one bundle: the signed checkpoint, a signed manifest (how many receipts and a digest
of their leaf hashes, so dropping one is detected), each receipt's exact envelope with its
inclusion proof and a decoded copy, every ``key.rotated`` receipt (so the key chain can be
rebuilt), and a consistency proof from the previously exported checkpoint. ``jsonl`` carries the
same, a header line then one receipt per line. ``csv`` is for spreadsheets: no proofs, and its
first line says so. Verification needs only the public key file.
"""
from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from engine.clock import iso_utc

from .dsse import decode_envelope
from .keys import SignerSource, TrustSet
from .ledger import Ledger, StoredReceipt
from .merkle import MerkleLevels, leaf_hash, verify_consistency, verify_inclusion
from .note import Note, NoteError, parse_note, parse_signed_checkpoint, sign_note
from .verify import (
    Facts,
    FailureKind,
    VerifyReport,
    apply_rotations,
    check_checkpoint,
    check_links,
    check_many,
)

EXPORT_FORMAT = "ggen.receipts.export/v1"
MANIFEST_HEAD = "ggen.export/v1"
FORMATS = ("json", "jsonl", "csv")
CSV_HEADER_LINE = "# ggen receipts export (csv, for spreadsheets): carries no signatures or proofs and cannot be verified; use --format json for a verifiable bundle"
CSV_COLUMNS = (
    "seq",
    "receipt_id",
    "incident_id",
    "kind",
    "incident_type",
    "severity",
    "service",
    "region",
    "observed_at",
    "recorded_at",
    "actor",
    "summary",
    "leaf_sha256",
)


class ExportError(Exception):
    """An export could not be produced."""


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def select_receipts(ledger: Ledger, since_ms: int | None, size: int) -> list[StoredReceipt]:
    """Receipts of every incident active since ``since_ms`` (whole incidents, so parents and order
    can be checked), plus non-incident receipts observed since then; only ``seq < size``."""
    chosen: dict[int, StoredReceipt] = {}
    for iid in ledger.incident_ids(since_ms):
        for rec in ledger.incident_receipts(iid):
            if rec.seq < size:
                chosen[rec.seq] = rec
    for rec in ledger.non_incident_receipts(since_ms):
        if rec.seq < size:
            chosen[rec.seq] = rec
    return [chosen[s] for s in sorted(chosen)]


def manifest_text(origin: str, size: int, leaves: Sequence[bytes]) -> str:
    digest = hashlib.sha256(b"".join(leaves)).digest()
    return f"{MANIFEST_HEAD}\n{origin}\n{size}\n{len(leaves)}\n{_b64(digest)}\n"


@dataclass
class ExportBundle:
    """An export, before it is written in one of the formats."""

    header: dict[str, Any]
    receipts: list[dict[str, Any]]


def build_export(
    ledger: Ledger,
    keys: SignerSource,
    *,
    since_ms: int | None,
    now_ms: int,
    from_checkpoint: bytes | None = None,
    record: bool = True,
) -> ExportBundle:
    """Collect receipts, proofs and signed notes for an export of the newest checkpoint."""
    with ledger.snapshot():
        cp_raw = ledger.latest_checkpoint()
        if cp_raw is None:
            raise ExportError("the ledger is empty: nothing to export")
        cp = parse_signed_checkpoint(cp_raw)
        origin = ledger.origin
        leaves = ledger.leaf_hashes(cp.size)
        tree = MerkleLevels(leaves)
        if tree.root() != cp.root:
            raise ExportError("the ledger does not match its own newest checkpoint; run `ggen incidents verify --all`")
        chosen = select_receipts(ledger, since_ms, cp.size)
        rotations = [r for r in ledger.rotation_receipts() if r.seq < cp.size]
        signer = keys.signer(ledger.current_key_id())
        previous_size = ledger.last_export_size()
    prev_note: bytes | None = None
    if from_checkpoint is not None:
        try:
            prev = parse_signed_checkpoint(from_checkpoint)
        except NoteError as exc:
            raise ExportError(f"--from-checkpoint: {exc}") from None
        if prev.origin != origin or prev.size > cp.size or tree.root(prev.size) != prev.root:
            raise ExportError("--from-checkpoint is not a checkpoint of this ledger's history")
        prev_note = from_checkpoint
    elif previous_size is not None and 0 < previous_size <= cp.size:
        prev_note = ledger.checkpoint_at(previous_size)
    consistency: list[str] = []
    if prev_note is not None:
        prev_size = parse_signed_checkpoint(prev_note).size
        consistency = [_b64(h) for h in tree.consistency_proof(prev_size, cp.size)]

    def entry(rec: StoredReceipt) -> dict[str, Any]:
        try:
            envelope, payload = rec.envelope.decode("ascii"), rec.payload()
        except (ValueError, UnicodeDecodeError) as exc:  # EnvelopeError and JSON errors are ValueErrors
            raise ExportError(f"receipt seq {rec.seq} is damaged ({exc}); run `ggen incidents verify --all`") from None
        if leaf_hash(rec.envelope) != rec.leaf_hash:
            raise ExportError(f"receipt seq {rec.seq} no longer matches its leaf hash; run `ggen incidents verify --all`")
        return {
            "seq": rec.seq,
            "envelope": envelope,
            "leaf_sha256": rec.leaf_hash.hex(),
            "inclusion_proof": [_b64(h) for h in tree.inclusion_proof(rec.seq, cp.size)],
            "receipt": payload,
        }

    manifest = sign_note(manifest_text(origin, cp.size, [r.leaf_hash for r in chosen]), signer.name, signer.key_id, signer.sign)
    header = {
        "format": EXPORT_FORMAT,
        "origin": origin,
        "exported_at": iso_utc(now_ms),
        "since": None if since_ms is None else iso_utc(since_ms),
        "checkpoint": cp_raw.decode("utf-8"),
        "manifest": manifest.decode("utf-8"),
        "previous_checkpoint": None if prev_note is None else prev_note.decode("utf-8"),
        "consistency_proof": consistency,
        "key_history": [entry(r) for r in rotations],
        "count": len(chosen),
        "verify_with": "ggen incidents verify --export FILE --public-key KEYS (keys from `ggen keys export-public`)",
    }
    bundle = ExportBundle(header, [entry(r) for r in chosen])
    if record:
        ledger.record_export(cp.size, now_ms)
    return bundle


def _csv_cell(value: Any) -> str:
    s = "" if value is None else str(value)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in s):
        # Escape codes stay visible text, so `cat export.csv` cannot drive the terminal.
        s = "".join(c if c in "\n\t" or not (ord(c) < 32 or 127 <= ord(c) < 160) else f"\\x{ord(c):02x}" for c in s)
    if s[:1] in ("=", "+", "-", "@", "\t", "\r"):
        s = "'" + s  # a spreadsheet must show this text, not run it as a formula
    return s


def render_export(bundle: ExportBundle, fmt: str) -> bytes:
    """The export in ``json``, ``jsonl`` or ``csv``."""
    if fmt == "json":
        doc = dict(bundle.header)
        doc["receipts"] = bundle.receipts
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    if fmt == "jsonl":
        lines = [orjson.dumps(bundle.header)] + [orjson.dumps(r) for r in bundle.receipts]
        return b"\n".join(lines) + b"\n"
    if fmt == "csv":
        out = io.StringIO()
        out.write(CSV_HEADER_LINE + "\n")
        w = csv.writer(out, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in bundle.receipts:
            p = r["receipt"]
            w.writerow([_csv_cell(r["seq"] if c == "seq" else r["leaf_sha256"] if c == "leaf_sha256" else p.get(c)) for c in CSV_COLUMNS])
        return out.getvalue().encode("utf-8")
    raise ExportError(f"unknown export format {fmt!r} (use {', '.join(FORMATS)})")


# -- offline verification ----------------------------------------------------------------------------
class _Malformed(Exception):
    pass


def _parse_bundle(data: bytes) -> tuple[dict[str, Any], list[Any]]:
    stripped = data.lstrip()
    if stripped.startswith(b"#"):
        raise _Malformed("this is a csv export: it carries no signatures or proofs; export with --format json to verify")
    if not stripped:
        raise _Malformed("export file is empty")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        receipts = doc.get("receipts")
        if not isinstance(receipts, list):
            raise _Malformed("export has no receipts list")
        return doc, receipts
    if doc is not None:
        raise _Malformed("export is not a JSON object")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        raise _Malformed("export is not complete JSON (torn or truncated file)")
    try:
        header = orjson.loads(lines[0])
        receipts = [orjson.loads(line) for line in lines[1:]]
    except orjson.JSONDecodeError as exc:
        raise _Malformed(f"export is neither a JSON bundle nor JSON lines ({exc})") from None
    if not isinstance(header, dict):
        raise _Malformed("jsonl export's first line is not its header")
    return header, receipts


def _entry(obj: Any, where: str) -> tuple[int, bytes, list[bytes], dict[str, Any] | None]:
    if not isinstance(obj, dict):
        raise _Malformed(f"{where} is not an object")
    seq, env, proof = obj.get("seq"), obj.get("envelope"), obj.get("inclusion_proof")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise _Malformed(f"{where} has no valid seq")
    if not isinstance(env, str):
        raise _Malformed(f"{where} has no envelope text")
    if not isinstance(proof, list):
        raise _Malformed(f"{where} has no inclusion proof")
    try:
        raw = env.encode("ascii")
        hashes = [base64.b64decode(h, validate=True) for h in proof]
    except (UnicodeEncodeError, binascii.Error, ValueError, TypeError):
        raise _Malformed(f"{where} has a non-ASCII envelope or a bad proof hash") from None
    copy = obj.get("receipt")
    if copy is not None and not isinstance(copy, dict):
        raise _Malformed(f"{where} receipt copy is not an object")
    return seq, raw, hashes, copy


def _verify_manifest(report: VerifyReport, raw: Any, origin: str, size: int, leaves: Sequence[bytes], trust: TrustSet) -> None:
    if not isinstance(raw, str):
        report.add(FailureKind.EXPORT_MALFORMED, "export has no signed manifest")
        return
    try:
        note: Note = parse_note(raw.encode("utf-8"))
    except NoteError as exc:
        report.add(FailureKind.EXPORT_MALFORMED, f"export manifest: {exc}")
        return
    data = note.text.encode("utf-8")
    for sig in note.signatures:
        key = trust.get(sig.key_id.hex())
        if key is None or key.name != sig.name:
            continue
        # Signed at export time by the key in use then: one whose window had not ended before
        # the checkpoint (a key retired earlier could not have signed it honestly).
        if not key.verify(sig.sig, data) or (key.to_seq is not None and key.to_seq < size - 1):
            report.add(FailureKind.EXPORT_MALFORMED, "export manifest signature does not verify with a key valid at its checkpoint")
            return
        if note.text != manifest_text(origin, size, leaves):
            report.add(FailureKind.EXPORT_MALFORMED, "export holds other receipts than its signed manifest lists (receipts removed, added or reordered)")
        return
    report.add(FailureKind.EXPORT_MALFORMED, "export manifest is not signed by a trusted key")


def verify_export(data: bytes, anchors: TrustSet, pinned: bytes | None = None, workers: int | None = None) -> VerifyReport:
    """Verify an export offline with only public keys (and, optionally, a pinned checkpoint)."""
    report = VerifyReport(scope="export")
    if not anchors:
        report.add(FailureKind.NO_TRUSTED_KEY, "no public key given (pass --public-key FILE from `ggen keys export-public`)")
        return report
    try:
        header, raw_receipts = _parse_bundle(data)
        if header.get("format") != EXPORT_FORMAT:
            raise _Malformed(f"not a ggen receipts export (format {str(header.get('format'))[:40]!r})")
        origin = header.get("origin")
        if not isinstance(origin, str) or not origin:
            raise _Malformed("export names no ledger origin")
        entries = [_entry(r, f"receipt #{i}") for i, r in enumerate(raw_receipts)]
        history = header.get("key_history", [])
        if not isinstance(history, list):
            raise _Malformed("key_history is not a list")
        history_entries = [_entry(r, f"key_history #{i}") for i, r in enumerate(history)]
        cp_text = header.get("checkpoint")
        if not isinstance(cp_text, str):
            raise _Malformed("export has no checkpoint")
        count = header.get("count")
        if count is not None and count != len(entries):
            raise _Malformed(f"export says it holds {count} receipts but holds {len(entries)} (torn or edited)")
    except _Malformed as exc:
        report.add(FailureKind.EXPORT_MALFORMED, str(exc))
        return report
    report.origin = origin
    seqs = [e[0] for e in entries]
    if seqs != sorted(set(seqs)):
        report.add(FailureKind.EXPORT_MALFORMED, "receipts are not in strictly increasing seq order")
        return report
    trust = anchors.copy()
    apply_rotations(trust, origin, [(e[0], e[1]) for e in history_entries], None)
    cp, fail = check_checkpoint(cp_text.encode("utf-8"), origin, trust)
    if fail is not None:
        report.add(fail.kind, fail.reason)
        return report
    assert cp is not None
    report.checkpoint_size, report.checkpoint_root = cp.size, cp.root
    for seq, raw, proof, _ in history_entries:
        if seq >= cp.size or not verify_inclusion(leaf_hash(raw), seq, cp.size, proof, cp.root):
            report.add(FailureKind.INCLUSION_FAILED, "key.rotated receipt is not included in the export's checkpoint", seq)
    results = check_many(origin, trust, items=[(e[0], e[1]) for e in entries], workers=workers)
    report.checked = len(results)
    facts: list[Facts] = []
    leaf_of: dict[int, bytes] = {}
    for (seq, raw, proof, copy), (_, leaf, f, fail) in zip(entries, results):
        report.seqs.append(seq)
        leaf_of[seq] = leaf
        if fail is not None:
            report.add(fail.kind, fail.reason, seq, fail.receipt_id)
        if f is not None:
            report.receipt_ids[seq] = f.receipt_id
            facts.append(f)
            if copy is not None and copy != orjson.loads(decode_envelope(raw).payload):
                report.add(FailureKind.EXPORT_MALFORMED, "the readable receipt copy differs from the signed payload (edited export)", seq, f.receipt_id)
        if seq >= cp.size or not verify_inclusion(leaf, seq, cp.size, proof, cp.root):
            report.add(FailureKind.INCLUSION_FAILED, f"inclusion proof against the checkpoint of size {cp.size} fails", seq, report.receipt_ids.get(seq))
    _verify_manifest(report, header.get("manifest"), origin, cp.size, [leaf_of[s] for s in seqs], trust)
    _verify_previous(report, header, origin, cp, trust)
    if pinned is not None:
        _verify_pinned_export(report, pinned, header, origin, cp, trust)
    by_id = {f.receipt_id: f for f in facts}
    check_links(report, facts, leaf_of, by_id)
    return report


def _proof(header: dict[str, Any]) -> list[bytes] | None:
    proof = header.get("consistency_proof")
    if not isinstance(proof, list):
        return None
    try:
        return [base64.b64decode(h, validate=True) for h in proof]
    except (binascii.Error, ValueError, TypeError):
        return None


def _verify_previous(report: VerifyReport, header: dict[str, Any], origin: str, cp: Any, trust: TrustSet) -> None:
    prev_text = header.get("previous_checkpoint")
    if prev_text is None:
        return
    if not isinstance(prev_text, str):
        report.add(FailureKind.EXPORT_MALFORMED, "previous_checkpoint is not a note")
        return
    prev, fail = check_checkpoint(prev_text.encode("utf-8"), origin, trust, "previous exported checkpoint")
    if fail is not None:
        report.add(fail.kind, fail.reason)
        return
    assert prev is not None
    proof = _proof(header)
    if proof is None or not verify_consistency(prev.size, cp.size, proof, prev.root, cp.root):
        report.add(FailureKind.PINNED_INCONSISTENT, f"no valid consistency proof from the previous export (size {prev.size}) to this one (size {cp.size})")


def _verify_pinned_export(report: VerifyReport, pinned_raw: bytes, header: dict[str, Any], origin: str, cp: Any, trust: TrustSet) -> None:
    pin, fail = check_checkpoint(pinned_raw, origin, trust, "pinned checkpoint")
    if fail is not None:
        report.add(fail.kind, fail.reason)
        return
    assert pin is not None
    report.pinned_size = pin.size
    if pin.size > cp.size:
        report.add(FailureKind.TRUNCATED, f"the pinned checkpoint commits to {pin.size} receipts but this export's checkpoint has {cp.size}")
        return
    if pin.size == cp.size:
        if pin.root != cp.root:
            report.add(FailureKind.PINNED_INCONSISTENT, f"the pinned checkpoint and the export disagree about the tree of size {cp.size}")
        return
    prev_text = header.get("previous_checkpoint")
    proof = _proof(header)
    if isinstance(prev_text, str):
        try:
            prev = parse_signed_checkpoint(prev_text.encode("utf-8"))
        except NoteError:
            prev = None
        if prev is not None and prev.size == pin.size:
            if prev.root != pin.root or proof is None or not verify_consistency(pin.size, cp.size, proof, pin.root, cp.root):
                report.add(FailureKind.PINNED_INCONSISTENT, f"the export's log is not an extension of the pinned checkpoint of size {pin.size}")
            return
    report.add(
        FailureKind.PINNED_INCONSISTENT,
        f"the export carries no consistency proof from the pinned size {pin.size}; export again with --from-checkpoint PINNED",
    )


def read_checkpoint_file(data: bytes) -> bytes:
    """A pinned checkpoint from a file holding a checkpoint note, or a previous json/jsonl export."""
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        try:
            header, _ = _parse_bundle(data)
        except _Malformed as exc:
            raise NoteError(str(exc)) from None
        cp = header.get("checkpoint")
        if not isinstance(cp, str):
            raise NoteError("that export holds no checkpoint")
        return cp.encode("utf-8")
    return data
