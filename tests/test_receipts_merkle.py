"""RFC 6962 / RFC 9162 Merkle code: published vectors, a naive recursive reference for every
tree size up to 64, corrupted proofs, malformed input, and the ledger's stored-node proofs."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.receipts import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from engine.receipts.merkle import Frontier, MerkleLevels

MAX_N = 64


# -- a naive reference, written straight from the RFC's recursive definitions -----------------------
def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


DATA = [b"leaf-%d" % i for i in range(MAX_N)]
LEAVES = [leaf_hash(x) for x in DATA]


# -- published vectors (RFC 6962 test data as used by certificate-transparency and transparency-dev) --
VECTOR_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof)
VECTOR_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# (old size, new size, proof)
VECTOR_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
VL = [leaf_hash(x) for x in VECTOR_LEAVES]


def test_published_roots():
    assert root_hash([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for n in range(1, 9):
        assert root_hash(VL[:n]).hex() == VECTOR_ROOTS[n - 1], n


@pytest.mark.parametrize("index,size,proof", VECTOR_INCLUSION)
def test_published_inclusion_proofs(index, size, proof):
    want = [bytes.fromhex(h) for h in proof]
    assert inclusion_proof(VL[:size], index) == want
    assert verify_inclusion(VL[index], index, size, want, bytes.fromhex(VECTOR_ROOTS[size - 1]))


@pytest.mark.parametrize("old,new,proof", VECTOR_CONSISTENCY)
def test_published_consistency_proofs(old, new, proof):
    want = [bytes.fromhex(h) for h in proof]
    assert consistency_proof(VL[:new], old) == want
    assert verify_consistency(old, new, want, bytes.fromhex(VECTOR_ROOTS[old - 1]), bytes.fromhex(VECTOR_ROOTS[new - 1]))


def test_leaf_and_node_hash_domain_separation():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert node_hash(a, b) != node_hash(b, a)


# -- every size up to 64 against the reference -----------------------------------------------------------
def test_roots_match_reference_for_every_size():
    for n in range(0, MAX_N + 1):
        want = ref_mth(DATA[:n])
        assert root_hash(LEAVES[:n]) == want
        assert MerkleLevels(LEAVES[:n]).root() == want
        f = Frontier()
        for h in LEAVES[:n]:
            f.append(h)
        assert f.root() == want


def test_inclusion_proofs_for_every_leaf_of_every_size():
    for n in range(1, MAX_N + 1):
        root = ref_mth(DATA[:n])
        levels = MerkleLevels(LEAVES[:n])
        for m in range(n):
            proof = inclusion_proof(LEAVES[:n], m)
            assert proof == ref_path(m, DATA[:n]), (m, n)
            assert levels.inclusion_proof(m) == proof
            assert verify_inclusion(LEAVES[m], m, n, proof, root)
            # the same proof must not verify for a neighbouring leaf, index or size
            if n > 1:
                other = (m + 1) % n
                assert not verify_inclusion(LEAVES[other], m, n, proof, root)
                assert not verify_inclusion(LEAVES[m], other, n, proof, root)
            # a wrong tree height (the probes of transparency-dev's verifier tests)
            assert not verify_inclusion(LEAVES[m], m, n * 2, proof, root)
            assert not verify_inclusion(LEAVES[m], m, n // 2, proof, root)
            for i in range(len(proof)):
                bad = list(proof)
                bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
                assert not verify_inclusion(LEAVES[m], m, n, bad, root)
            assert not verify_inclusion(LEAVES[m], m, n, proof + [root], root)
            if proof:
                assert not verify_inclusion(LEAVES[m], m, n, proof[:-1], root)


def test_consistency_proofs_for_every_pair_of_sizes():
    roots = [ref_mth(DATA[:n]) for n in range(MAX_N + 1)]
    for n in range(1, MAX_N + 1):
        levels = MerkleLevels(LEAVES[:n])
        for m in range(1, n + 1):
            proof = consistency_proof(LEAVES[:n], m)
            assert proof == ref_subproof(m, DATA[:n], True), (m, n)
            assert levels.consistency_proof(m) == proof
            assert verify_consistency(m, n, proof, roots[m], roots[n])
            if m == n:
                assert proof == []
                continue
            assert not verify_consistency(m, n, proof, roots[n], roots[m])
            assert not verify_consistency(m, n, [], roots[m], roots[n])
            assert not verify_consistency(m, n * 2, proof, roots[m], roots[n])
            assert not verify_consistency(m, n // 2, proof, roots[m], roots[n])
            if m > 1:
                assert not verify_consistency(m - 1, n, proof, roots[m - 1], roots[n])
                assert not verify_consistency(m - 1, n, proof, roots[m], roots[n])
            for i in range(len(proof)):
                bad = list(proof)
                bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
                assert not verify_consistency(m, n, bad, roots[m], roots[n])
            assert not verify_consistency(m, n, proof + [roots[n]], roots[m], roots[n])
            assert not verify_consistency(m, n, proof[:-1], roots[m], roots[n])


def test_edge_rules_of_the_spec():
    r1, r2 = ref_mth(DATA[:1]), ref_mth(DATA[:2])
    # from size 0: refused (nothing to be consistent with)
    assert not verify_consistency(0, 2, [], root_hash([]), r2)
    assert not verify_consistency(0, 0, [], root_hash([]), root_hash([]))
    with pytest.raises(ValueError):
        consistency_proof(LEAVES[:2], 0)
    # equal sizes: only the empty proof with equal roots
    assert verify_consistency(2, 2, [], r2, r2)
    assert not verify_consistency(2, 2, [r1], r2, r2)
    assert not verify_consistency(2, 2, [], r1, r2)
    # old > new, index >= size
    assert not verify_consistency(3, 2, [], r2, r2)
    assert not verify_inclusion(LEAVES[0], 1, 1, [], r1)
    assert not verify_inclusion(LEAVES[0], 0, 0, [], r1)
    with pytest.raises(ValueError):
        inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(ValueError):
        consistency_proof(LEAVES[:3], 4)


junk = st.one_of(st.none(), st.integers(-5, 2**70), st.binary(max_size=40), st.text(max_size=5), st.lists(st.binary(max_size=40), max_size=4))


@settings(max_examples=300, deadline=None)
@given(leaf=junk, index=junk, size=junk, proof=junk, root=junk, old_root=junk)
def test_verifiers_never_raise_on_malformed_input(leaf, index, size, proof, root, old_root):
    assert verify_inclusion(leaf, index, size, proof, root) in (True, False)
    assert verify_consistency(index, size, proof, old_root, root) in (True, False)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_random_large_trees_against_reference(n, data):
    leaves = [leaf_hash(b"x%d" % i) for i in range(n)]
    m = data.draw(st.integers(0, n - 1))
    old = data.draw(st.integers(1, n))
    levels = MerkleLevels(leaves)
    root = levels.root()
    assert verify_inclusion(leaves[m], m, n, levels.inclusion_proof(m), root)
    assert verify_consistency(old, n, levels.consistency_proof(old), levels.root(old), root)


def test_ledger_stored_nodes_give_the_same_roots_and_proofs(tmp_path):
    """The ledger computes roots and proofs from cached subtree hashes, not from all leaves."""
    from engine.receipts.keys import KeyStore
    from engine.receipts.ledger import Ledger, ReceiptDraft

    keys = KeyStore.init(tmp_path / "keys")
    ledger = Ledger.open(tmp_path / "ledger.sqlite", keys)
    sizes = [1, 2, 3, 5, 8, 13, 7, 1, 4]  # uneven batches cross many power-of-two boundaries
    for batch in sizes:
        ledger.append([ReceiptDraft(kind="certificate.issued", observed_at_ms=1, recorded_at_ms=1) for _ in range(batch)], keys)
    n = sum(sizes)
    leaves = [r.leaf_hash for r in ledger.iter_receipts()]
    assert len(leaves) == n
    for size in range(1, n + 1):
        assert ledger.root(size) == root_hash(leaves[:size])
    for m in range(n):
        assert ledger.inclusion_proof(m, n) == inclusion_proof(leaves, m)
    for old in range(1, n + 1):
        assert ledger.consistency_proof(old, n) == consistency_proof(leaves, old)
