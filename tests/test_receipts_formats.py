"""DSSE envelopes and C2SP signed notes: published vectors, round trips, and fuzzed input that
must give a clear error and never crash."""
from __future__ import annotations

import base64
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.receipts import pae
from engine.receipts.dsse import PAYLOAD_TYPE, EnvelopeError, decode_envelope, encode_envelope
from engine.receipts.keys import Signer, TrustedKey, TrustSet
from engine.receipts.note import (
    Checkpoint,
    NoteError,
    note_key_id,
    parse_checkpoint_text,
    parse_note,
    parse_signed_checkpoint,
    parse_verifier_key,
    sign_note,
    verifier_key,
)
from engine.receipts.verify import FailureKind, check_checkpoint, check_envelope


def test_pae_matches_the_dsse_specification_example():
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_counts_bytes_not_characters():
    assert pae("t\u00e9", "\u00e9".encode()) == b"DSSEv1 3 t\xc3\xa9 2 \xc3\xa9"


def test_go_sumdb_note_vector_verifies():
    """The signed note and verifier key from the Go sumdb/note documentation."""
    name, kid, pub = parse_verifier_key("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert (name, kid.hex()) == ("PeterNeumann", "c74f20a3")
    assert note_key_id(name, pub) == kid
    msg = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
        "\n"
        "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    note = parse_note(msg.encode())
    (sig,) = note.signatures
    assert sig.key_id == kid
    key = TrustedKey(name, kid, pub)
    assert key.verify(sig.sig, note.text.encode())
    assert not key.verify(sig.sig, note.text.replace("problem", "Problem").encode())


def test_verifier_key_round_trip_and_tamper():
    s = Signer.generate("ggen.ledger/test")
    vk = verifier_key(s.name, s.public_key)
    assert parse_verifier_key(vk) == (s.name, s.key_id, s.public_key)
    name, kid, rest = vk.split("+", 2)
    with pytest.raises(NoteError, match="does not match"):
        parse_verifier_key(f"other+{kid}+{rest}")


def test_checkpoint_note_round_trip():
    s = Signer.generate("ggen.ledger/abc")
    cp = Checkpoint("ggen.ledger/abc", 42, bytes(range(32)))
    raw = sign_note(cp.text(), s.name, s.key_id, s.sign)
    lines = raw.decode().split("\n")
    assert lines[:3] == ["ggen.ledger/abc", "42", base64.b64encode(bytes(range(32))).decode()]
    assert lines[3] == "" and lines[4].startswith("\u2014 ggen.ledger/abc ")
    parsed = parse_signed_checkpoint(raw)
    assert parsed.checkpoint == cp
    trust = TrustSet([TrustedKey(s.name, s.key_id, s.public_key)])
    got, fail = check_checkpoint(raw, "ggen.ledger/abc", trust)
    assert fail is None and got is not None and got.size == 42
    # another key's signature is not trusted
    other = Signer.generate("ggen.ledger/abc")
    raw2 = sign_note(cp.text(), other.name, other.key_id, other.sign)
    _, fail = check_checkpoint(raw2, "ggen.ledger/abc", trust)
    assert fail is not None and fail.kind is FailureKind.CHECKPOINT_UNTRUSTED
    # an edited size breaks the signature
    _, fail = check_checkpoint(raw.replace(b"\n42\n", b"\n43\n"), "ggen.ledger/abc", trust)
    assert fail is not None and fail.kind is FailureKind.CHECKPOINT_UNTRUSTED


@pytest.mark.parametrize(
    "text,words",
    [
        ("o\n01\nAAAA\n", "decimal"),
        ("o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n", "decimal"),
        ("o\n5\nAAAA\n", "not 32"),
        ("o\n5\n!!!\n", "base64"),
        ("\n5\n" + base64.b64encode(bytes(32)).decode() + "\n", "origin"),
        ("o\n5\n", "needs"),
    ],
)
def test_malformed_checkpoint_text(text, words):
    with pytest.raises(NoteError, match=words):
        parse_checkpoint_text(text)


def _valid_envelope() -> tuple[bytes, Signer]:
    s = Signer.generate("ggen.ledger/fuzz")
    body = orjson.dumps({"hello": "world"})
    return encode_envelope(PAYLOAD_TYPE, body, s.key_id_hex, s.sign(pae(PAYLOAD_TYPE, body))), s


def test_envelope_round_trip():
    raw, s = _valid_envelope()
    env = decode_envelope(raw)
    assert env.payload_type == PAYLOAD_TYPE and env.keyid == s.key_id_hex
    assert env.payload == b'{"hello":"world"}'


@pytest.mark.parametrize(
    "raw,words",
    [
        (b"", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payload":"e30=","payloadType":"x"}', "no signatures"),
        (b'{"payload":"***","payloadType":"x","signatures":[{"keyid":"a","sig":"AA=="}]}', "base64"),
        (b'{"payload":"e30=","payloadType":7,"signatures":[{"keyid":"a","sig":"AA=="}]}', "payloadType"),
        (b'{"payload":"e30=","payloadType":"x","signatures":[{"keyid":"a","sig":"AA=="},{"keyid":"b","sig":"AA=="}]}', "exactly one"),
        (b'{"payload":"e30=","payloadType":"x","signatures":[{"keyid":"","sig":"AA=="}]}', "keyid"),
        (b'{"payload":"e30=","payloadType":"x","extra":1,"signatures":[{"keyid":"a","sig":"AA=="}]}', "unknown field"),
    ],
)
def test_malformed_envelopes_give_clear_errors(raw, words):
    with pytest.raises(EnvelopeError, match=words):
        decode_envelope(raw)


def _mutations(raw: bytes, rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        b = bytearray(raw)
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            del b[rng.randrange(len(b)) :]
        elif op == 2:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        else:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.choice([b'"', b"{", b"}", b"\\u0000", b"\xff", b",", b"null", b"1e999"])
        out.append(bytes(b))
    return out


def test_fuzzed_envelopes_are_rejected_with_a_reason_never_a_crash():
    raw, s = _valid_envelope()
    trust = TrustSet([TrustedKey(s.name, s.key_id, s.public_key)])
    rng = random.Random(7)
    kinds = set()
    for bad in _mutations(raw, rng, 1500):
        leaf, facts, fail = check_envelope(bad, 0, "ggen.ledger/fuzz", trust)
        assert len(leaf) == 32
        if bad == raw:
            continue
        assert fail is not None, bad  # nothing mutated verifies
        assert fail.reason and 10 <= fail.kind.code <= 29
        kinds.add(fail.kind)
    assert FailureKind.ENVELOPE_MALFORMED in kinds


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_as_envelope(raw):
    s = Signer.generate("ggen.ledger/fuzz")
    trust = TrustSet([TrustedKey(s.name, s.key_id, s.public_key)])
    _, facts, fail = check_envelope(raw, 3, "ggen.ledger/fuzz", trust)
    assert facts is None and fail is not None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_random_bytes_as_note(raw):
    try:
        parse_signed_checkpoint(raw)
    except NoteError as exc:
        assert str(exc)


def test_fuzzed_checkpoint_notes_never_crash():
    s = Signer.generate("ggen.ledger/fuzz")
    raw = sign_note(Checkpoint("ggen.ledger/fuzz", 9, bytes(32)).text(), s.name, s.key_id, s.sign)
    trust = TrustSet([TrustedKey(s.name, s.key_id, s.public_key)])
    rng = random.Random(11)
    for bad in _mutations(raw, rng, 1500):
        cp, fail = check_checkpoint(bad, "ggen.ledger/fuzz", trust)
        if fail is None:
            # only a mutation that leaves the signed text and signature intact may pass
            assert cp is not None and cp.note.text == parse_note(raw).text
        else:
            assert fail.kind in (FailureKind.CHECKPOINT_MALFORMED, FailureKind.CHECKPOINT_UNTRUSTED) and fail.reason
