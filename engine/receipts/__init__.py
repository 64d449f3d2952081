"""Signed receipts in a tamper-evident ledger (see ``spec/receipts.md``).

The stable public API of section 7 (RFC 6962 Merkle functions and DSSE ``pae``) is importable
from here, so anyone can check the implementation against published test vectors. The ledger,
key store, sink, verification and export live in the sub-modules and are re-exported too.
"""
from __future__ import annotations

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
