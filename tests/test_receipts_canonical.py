"""Canonical JSON: identical to RFC 8785 (the rfc8785 package) on the receipt profile, and
values outside the profile are refused before anything is signed."""
from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.receipts.canonical import MAX_SAFE_INT, ProfileError, canonical_json, check_profile

# Strings: any Unicode scalar values (no lone surrogates), including controls, quotes, DEL,
# U+2028/2029 and astral characters, where JSON escaping rules differ between encoders.
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
ascii_keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_SAFE_INT, MAX_SAFE_INT),
    st.sampled_from([0, -1, MAX_SAFE_INT, -MAX_SAFE_INT, 2**31, -(2**31)]),
    text,
)
profile_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(ascii_keys, children, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(profile_values)
def test_canonical_json_equals_rfc8785_on_the_profile(value):
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(ascii_keys, profile_values, max_size=8))
def test_key_order_is_the_rfc8785_order(obj):
    out = canonical_json(obj)
    assert out == rfc8785.dumps(obj)
    assert b"\n" not in out.replace(b"\\n", b"")  # no insignificant whitespace


def test_a_realistic_receipt_payload():
    payload = {
        "schema": "ggen.receipt/v1",
        "seq": 17,
        "prev": None,
        "evidence": {"queue_depth": 1245, "error_rate_bp": 230, "latency_p99_ms": 5250},
        "summary": 'depth "over" 1000 \u2014 caf\u00e9 \U0001F525 \u2028',
        "actions": [{"action": "scale_concurrency", "from": 20, "to": 50}],
        "observed_at": "2026-01-25T14:17:15.000Z",
    }
    assert canonical_json(payload) == rfc8785.dumps(payload)


@pytest.mark.parametrize(
    "value,path,words",
    [
        ({"evidence": {"error_rate": 2.3}}, "$.evidence.error_rate", "float"),
        ({"x": [1, 0.0]}, "$.x[1]", "float"),
        ({"n": 2**53}, "$.n", "outside"),
        ({"n": -(2**53)}, "$.n", "outside"),
        ({"n": 10**30}, "$.n", "outside"),
        ({"caf\u00e9": 1}, "$", "not ASCII"),
        ({1: "a"}, "$", "keys must be strings"),
        ({("a",): "a"}, "$", "keys must be strings"),
        ({"s": "bad \ud800 surrogate"}, "$.s", "surrogate"),
        ({"b": b"bytes"}, "$.b", "bytes"),
        ({"s": {1, 2}}, "$.s", "set"),
        ({"f": float("nan")}, "$.f", "float"),
    ],
)
def test_out_of_profile_values_are_refused(value, path, words):
    with pytest.raises(ProfileError) as exc:
        canonical_json(value)
    assert exc.value.path == path
    assert words in str(exc.value)


def test_the_profile_edges_are_accepted():
    check_profile({"max": MAX_SAFE_INT, "min": -MAX_SAFE_INT, "t": True, "n": None, "l": (1, 2)})


def test_ledger_refuses_out_of_profile_evidence_before_signing(tmp_path):
    from engine.receipts.keys import KeyStore
    from engine.receipts.ledger import Ledger, ReceiptDraft

    keys = KeyStore.init(tmp_path / "keys")
    ledger = Ledger.open(tmp_path / "l.sqlite", keys)
    good = ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1, evidence={"score": 90})
    bad = ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1, evidence={"score": 90.5})
    with pytest.raises(ProfileError, match="evidence.score"):
        ledger.append([good, bad], keys)
    assert ledger.size() == 0  # the whole batch was refused: nothing signed, nothing stored
    assert ledger.latest_checkpoint() is None
    ledger.append([good], keys)
    assert ledger.size() == 1
