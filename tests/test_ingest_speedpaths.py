"""The shortcuts ingest takes for speed give the answers of the slow, obvious way: the byte scan
that decides whether DuckDB may read a file directly, across its block boundaries."""
from __future__ import annotations

import hashlib
import io

import pytest

from analyzer.ingest import pipeline

BLOCK = 1 << 20  # the scan reads 1 MB at a time


def _scan(data: bytes) -> pipeline._Scan:
    return pipeline._scan(io.BytesIO(data), hashlib.sha256(), False)


def _filler(n: int) -> bytes:
    line = b"2026-01-25T14:15:00Z INFO filler line\n"
    return (line * (n // len(line) + 1))[:n]


@pytest.mark.parametrize("offset", [-3, -2, -1, 0, 1])
def test_marker_split_across_blocks_is_found(offset: int) -> None:
    head = _filler(BLOCK + offset)
    s = _scan(head + b"x\x01\x02\x03y\n" + _filler(5000))
    assert s.problem.startswith("control bytes")


@pytest.mark.parametrize("offset", [-2, -1, 0, 1])
def test_crlf_across_blocks_is_fine_and_a_lone_cr_is_not(offset: int) -> None:
    head = _filler(BLOCK + offset - 1)
    assert _scan(head + b"\r\n" + _filler(5000)).problem == ""
    assert _scan(head + b"\rz\n" + _filler(5000)).problem == "carriage return inside a line"


def test_scan_counts_lines_and_hashes_every_byte() -> None:
    data = _filler(3 * BLOCK + 17) + b"last line without newline"
    s = _scan(data)
    assert s.lines == data.count(b"\n") + 1
    assert s.sha256 == hashlib.sha256(data).hexdigest()
    assert s.problem == ""
    assert _scan(data + b"\r").problem == ""  # a trailing CR at the very end is a line ending
