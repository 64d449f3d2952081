"""Re-ingesting the same content adds nothing, whether a copy is plain or gzip-compressed."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ingest_support import ingest, rows, write

LOG = "".join(f"2026-01-25T14:00:{i:02d}Z INFO api request {i} done\n" for i in range(30))
CSV = "timestamp,level,service,message\n" + "".join(f"2026-01-25T14:00:{i:02d}Z,INFO,api,request {i}\n" for i in range(30))


@pytest.mark.parametrize(("name", "text"), [("generic.log", LOG), ("events.csv", CSV)])
@pytest.mark.parametrize("gz_first", [True, False])
def test_a_gzipped_copy_is_a_duplicate(tmp_path: Path, name: str, text: str, gz_first: bool) -> None:
    plain = write(tmp_path / "plain" / name, text)
    packed = tmp_path / "packed" / (name + ".gz")
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(text.encode(), mtime=0))
    order = [packed, plain] if gz_first else [plain, packed]
    summary = ingest(tmp_path, *order)
    assert [f.status for f in summary.files] == ["ingested", "duplicate"]
    assert f"same content as {order[0].resolve()}" in summary.files[1].note
    assert rows(tmp_path, "SELECT count(*) AS n FROM events")[0]["n"] == 30


def test_a_recompressed_gz_is_a_duplicate(tmp_path: Path) -> None:
    a = tmp_path / "a.log.gz"
    b = tmp_path / "b.log.gz"
    a.write_bytes(gzip.compress(LOG.encode(), compresslevel=1, mtime=0))
    b.write_bytes(gzip.compress(LOG.encode(), compresslevel=9, mtime=12345))
    assert a.read_bytes() != b.read_bytes()
    summary = ingest(tmp_path, a, b)
    assert [f.status for f in summary.files] == ["ingested", "duplicate"]


def test_a_truncated_gz_is_not_a_duplicate_of_its_prefix(tmp_path: Path) -> None:
    packed = gzip.compress(LOG.encode(), mtime=0)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(packed[: len(packed) - 12])  # the trailer and a little data gone
    whole = write(tmp_path / "whole.log", LOG)
    summary = ingest(tmp_path, cut, whole)
    assert summary.files[1].status == "ingested"
