"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.

Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right), and a tree of
``n`` leaves splits at the largest power of two smaller than ``n``. Proof *generation* is written
once against a :class:`NodeSource` (anything that can return the hash of a complete, aligned
subtree), so the same code serves an in-memory list of leaf hashes and the ledger's stored
subtree hashes. Proof *verification* follows the RFC 9162 algorithms and returns False, never
raises, on malformed input.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Protocol, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf."""
    return _sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeSource(Protocol):
    """Hash of the complete subtree at ``level`` (0 = leaves) covering leaves
    ``[index * 2**level, (index + 1) * 2**level)``."""

    def __call__(self, level: int, index: int) -> bytes: ...


def range_hash(node: NodeSource, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)`` where ``start`` is a multiple of the largest power of two
    not exceeding ``end - start`` (true for every range RFC 6962 proofs ask for).

    The range splits into complete subtrees along the binary digits of its size, folded from
    the right: ``H(S1, H(S2, ... Sk))``.
    """
    size = end - start
    if size <= 0:
        raise ValueError(f"empty range [{start}, {end})")
    parts: list[bytes] = []
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append(node(level, pos >> level))
            pos += 1 << level
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


def inclusion_path(node: NodeSource, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[size]) computed from complete-subtree hashes."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    collected: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            collected.append(range_hash(node, lo + k, hi))
            hi = lo + k
        else:
            collected.append(range_hash(node, lo, lo + k))
            lo += k
    collected.reverse()
    return collected


def consistency_path(node: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 PROOF(old_size, D[new_size]) computed from complete-subtree hashes."""
    if old_size <= 0:
        raise ValueError("a consistency proof needs an old tree of at least one leaf")
    if old_size > new_size:
        raise ValueError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        return []
    collected: list[bytes] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while True:
        size = hi - lo
        if m == size:
            if not whole:
                collected.append(range_hash(node, lo, hi))
            break
        k = _split(size)
        if m <= k:
            collected.append(range_hash(node, lo + k, hi))
            hi = lo + k
        else:
            collected.append(range_hash(node, lo, lo + k))
            lo += k
            m -= k
            whole = False
    collected.reverse()
    return collected


class MerkleLevels:
    """Every complete subtree hash of a tree held in memory (about 2n hashes for n leaves).

    Built in O(n) from leaf hashes; after that roots and proofs of any prefix cost O(log^2 n).
    Used to export many proofs at once and to check a whole ledger in one pass.
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        levels: list[list[bytes]] = [list(leaf_hashes)]
        cur = levels[0]
        while len(cur) > 1:
            nxt = [node_hash(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
            levels.append(nxt)
            cur = nxt
        self.levels = levels
        self.size = len(levels[0])

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is outside 0..{self.size}")
        return EMPTY_ROOT if size == 0 else range_hash(self.node, 0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if size > self.size:
            raise ValueError(f"size {size} is larger than the tree ({self.size})")
        return inclusion_path(self.node, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        if new_size > self.size:
            raise ValueError(f"size {new_size} is larger than the tree ({self.size})")
        return consistency_path(self.node, old_size, new_size)


class Frontier:
    """The right edge of a growing tree: one pending left subtree per set bit of the size.

    Appending a leaf costs O(1) amortised node hashes, and the root is a fold of at most
    log2(n) hashes, so the ledger never recomputes the tree to sign a checkpoint.
    """

    def __init__(self, size: int = 0, pending: dict[int, bytes] | None = None) -> None:
        self.size = size
        self.pending: dict[int, bytes] = dict(pending or {})

    @classmethod
    def load(cls, size: int, node: NodeSource) -> "Frontier":
        """Rebuild the frontier of a tree of ``size`` leaves from stored subtree hashes."""
        pending: dict[int, bytes] = {}
        pos = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                pending[level] = node(level, pos >> level)
                pos += 1 << level
        return cls(size, pending)

    def append(self, leaf: bytes, emit: Callable[[int, int, bytes], None] | None = None) -> None:
        """Add one leaf hash; ``emit(level, index, hash)`` is called for each new interior node."""
        h, level, index = leaf, 0, self.size
        while index & 1:
            h = node_hash(self.pending.pop(level), h)
            level += 1
            index >>= 1
            if emit is not None:
                emit(level, index, h)
        self.pending[level] = h
        self.size += 1

    def root(self) -> bytes:
        if self.size == 0:
            return EMPTY_ROOT
        acc: bytes | None = None
        for level in sorted(self.pending):
            h = self.pending[level]
            acc = h if acc is None else node_hash(h, acc)
        assert acc is not None
        return acc


def _list_source(leaf_hashes: Sequence[bytes]) -> NodeSource:
    """A NodeSource over a plain list: a complete subtree is hashed from its leaves on demand.

    Each proof asks for disjoint ranges, so one proof costs O(n) hashes in total.
    """

    def node(level: int, index: int) -> bytes:
        start = index << level
        return _root_of(leaf_hashes[start : start + (1 << level)])

    return node


def _root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    frontier = Frontier()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise ValueError(f"{what}[{i}] is not a {HASH_SIZE}-byte hash")


def root_hash(leaf_hashes: list[bytes]) -> bytes:
    """The Merkle tree head of the given leaf hashes (SHA-256 of b"" for an empty list)."""
    _check_hashes(leaf_hashes, "leaf_hashes")
    return _root_of(leaf_hashes)


def inclusion_proof(leaf_hashes: list[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaf_hashes`` (raises ValueError if out of range)."""
    _check_hashes(leaf_hashes, "leaf_hashes")
    return inclusion_path(_list_source(leaf_hashes), index, len(leaf_hashes))


def consistency_proof(leaf_hashes: list[bytes], old_size: int) -> list[bytes]:
    """The proof that the first ``old_size`` leaves are a prefix of ``leaf_hashes``.

    Raises ValueError for ``old_size`` of 0 (nothing to be consistent with) or beyond the tree;
    ``old_size == len(leaf_hashes)`` gives the empty proof.
    """
    _check_hashes(leaf_hashes, "leaf_hashes")
    return consistency_path(_list_source(leaf_hashes), old_size, len(leaf_hashes))


def _is_hash(value: object) -> bool:
    return isinstance(value, (bytes, bytearray)) and len(value) == HASH_SIZE


def _valid_proof(proof: object) -> bool:
    return isinstance(proof, (list, tuple)) and all(_is_hash(p) for p in proof)


def _valid_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """True when ``proof`` shows that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _valid_proof(proof)):
        return False
    if not (_valid_int(index) and _valid_int(size)) or not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(bytes(p), r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, bytes(p))
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == bytes(root)


def verify_consistency(old_size: int, new_size: int, proof: list[bytes], old_root: bytes, new_root: bytes) -> bool:
    """True when ``proof`` shows the tree of ``old_size`` (``old_root``) is a prefix of the tree
    of ``new_size`` (``new_root``). ``old_size`` 0 is refused; equal sizes need an empty proof
    and equal roots."""
    if not (_is_hash(old_root) and _is_hash(new_root) and _valid_proof(proof)):
        return False
    if not (_valid_int(old_size) and _valid_int(new_size)):
        return False
    if old_size <= 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and bytes(old_root) == bytes(new_root)
    if not proof:
        return False
    path = [bytes(p) for p in proof]
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == bytes(old_root) and sr == bytes(new_root)
