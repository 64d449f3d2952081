"""Signed receipts in a tamper-evident ledger (see ``spec/receipts.md``).

The stable public API of section 7 (RFC 6962 Merkle functions and DSSE ``pae``) is importable
from here, so anyone can check the implementation against published test vectors. The ledger,
key store, sink, verification and export live in the sub-modules and are re-exported too (each
imported when first asked for).
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Each public name and the sub-module it lives in. They are imported on first use, so opening the
# ledger (what a live engine does at start) does not pay for verification, export or summaries.
_WHERE = {
    "ProfileError": "canonical", "canonical_json": "canonical", "check_profile": "canonical",
    "PAYLOAD_TYPE": "dsse", "pae": "dsse",
    "KeyStore": "keys", "KeyStoreError": "keys", "Signer": "keys", "TrustedKey": "keys", "TrustSet": "keys",
    "fingerprint": "keys", "load_public_keys": "keys",
    "AmbiguousId": "ledger", "Ledger": "ledger", "LedgerCorrupt": "ledger", "LedgerError": "ledger",
    "LedgerNotFound": "ledger", "ReceiptDraft": "ledger", "ReceiptNotFound": "ledger", "StoredReceipt": "ledger",
    "consistency_proof": "merkle", "inclusion_proof": "merkle", "leaf_hash": "merkle", "node_hash": "merkle",
    "root_hash": "merkle", "verify_consistency": "merkle", "verify_inclusion": "merkle",
    "note_key_id": "note",
    "ReceiptSink": "sink",
    "IncidentSummary": "summary", "incidents_from_ledger": "summary", "summarize_incidents": "summary",
    "FailureKind": "verify", "VerifyReport": "verify", "verify_ledger": "verify",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:
    from .canonical import ProfileError, canonical_json, check_profile
    from .dsse import PAYLOAD_TYPE, pae
    from .keys import KeyStore, KeyStoreError, Signer, TrustedKey, TrustSet, fingerprint, load_public_keys
    from .ledger import (
        AmbiguousId,
        Ledger,
        LedgerCorrupt,
        LedgerError,
        LedgerNotFound,
        ReceiptDraft,
        ReceiptNotFound,
        StoredReceipt,
    )
    from .merkle import (
        consistency_proof,
        inclusion_proof,
        leaf_hash,
        node_hash,
        root_hash,
        verify_consistency,
        verify_inclusion,
    )
    from .note import note_key_id
    from .sink import ReceiptSink
    from .summary import IncidentSummary, incidents_from_ledger, summarize_incidents
    from .verify import FailureKind, VerifyReport, verify_ledger

__all__ = [
    "AmbiguousId",
    "FailureKind",
    "IncidentSummary",
    "KeyStore",
    "KeyStoreError",
    "Ledger",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerNotFound",
    "PAYLOAD_TYPE",
    "ProfileError",
    "ReceiptDraft",
    "ReceiptNotFound",
    "ReceiptSink",
    "Signer",
    "StoredReceipt",
    "TrustSet",
    "TrustedKey",
    "VerifyReport",
    "canonical_json",
    "check_profile",
    "consistency_proof",
    "fingerprint",
    "inclusion_proof",
    "incidents_from_ledger",
    "leaf_hash",
    "load_public_keys",
    "node_hash",
    "note_key_id",
    "pae",
    "root_hash",
    "summarize_incidents",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
]
