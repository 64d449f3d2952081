"""DSSE envelopes: the signed wrapper of every receipt.

``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with lengths in bytes.
The stored envelope is canonical JSON ``{"payload", "payloadType", "signatures": [{"keyid",
"sig"}]}``; its exact bytes are the Merkle leaf, so parsing here never re-serializes.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

from .canonical import canonical_json_unchecked

PAYLOAD_TYPE = "application/vnd.ggen.incident-receipt.v1+json"
MAX_ENVELOPE_BYTES = 1 << 20


class EnvelopeError(ValueError):
    """Envelope bytes that are not a well-formed DSSE envelope."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding of ``payload_type`` and ``payload``."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed envelope; ``payload`` is the decoded payload bytes as signed."""

    payload_type: str
    payload: bytes
    keyid: str
    sig: bytes


def encode_envelope(payload_type: str, payload: bytes, keyid: str, sig: bytes) -> bytes:
    """Canonical envelope bytes with one signature."""
    return canonical_json_unchecked(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": payload_type,
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}],
        }
    )


def _b64(value: object, what: str) -> bytes:
    if type(value) is not str:
        raise EnvelopeError(f"{what} is not a string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"{what} is not valid base64") from None


def decode_envelope(raw: bytes) -> Envelope:
    """Parse envelope bytes (exactly one signature), raising :class:`EnvelopeError` with the reason."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise EnvelopeError("envelope is not bytes")
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"envelope is {len(raw)} bytes, more than {MAX_ENVELOPE_BYTES}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"envelope is not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope is not a JSON object")
    extra = set(obj) - {"payload", "payloadType", "signatures"}
    if extra:
        raise EnvelopeError(f"envelope has unknown field(s) {sorted(extra)}")
    ptype = obj.get("payloadType")
    if not isinstance(ptype, str):
        raise EnvelopeError("envelope payloadType is missing or not a string")
    payload = _b64(obj.get("payload"), "envelope payload")
    sigs = obj.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise EnvelopeError("envelope has no signatures")
    if len(sigs) != 1:
        raise EnvelopeError(f"envelope has {len(sigs)} signatures; receipts carry exactly one")
    entry = sigs[0]
    if not isinstance(entry, dict) or set(entry) - {"keyid", "sig"}:
        raise EnvelopeError("envelope signature entry is not {keyid, sig}")
    keyid = entry.get("keyid")
    if not isinstance(keyid, str) or not keyid:
        raise EnvelopeError("envelope signature has no keyid")
    sig = _b64(entry.get("sig"), "envelope signature")
    return Envelope(ptype, payload, keyid, sig)
