"""Rejected lines, read back from the ``rejects`` table: the first few of a file for the ingest
summary, or all of them for ``ggen ingest --rejects``."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from analyzer.ingest.sources import STDIN_NAME, IngestError

# How many rejected lines per file the ingest summary names (the rest are counted).
SAMPLE_REJECTS = 5
# Characters of a rejected line's raw bytes shown in the summary and the listing.
RAW_PREVIEW_CHARS = 160


@dataclass(frozen=True)
class RejectRow:
    """One rejected line: where (file and 1-based line or record), why, and what it held."""

    file: str
    line: int
    reason: str
    raw: str  # the raw bytes as text: invalid UTF-8 as \\xNN escapes, cut to RAW_PREVIEW_CHARS
    raw_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(file: str, line: int | None, reason: str | None, raw: bytes | None, raw_bytes: int | None) -> RejectRow:
    text = (raw or b"").decode("utf-8", "backslashreplace")
    if len(text) > RAW_PREVIEW_CHARS:
        text = text[:RAW_PREVIEW_CHARS] + "..."
    return RejectRow(file, int(line or 0), reason or "", text, int(raw_bytes or 0))


def first_rejects(con: duckdb.DuckDBPyConnection, file: str, from_line: int = 1, limit: int = SAMPLE_REJECTS) -> list[RejectRow]:
    """The first ``limit`` rejects of ``file`` at or after ``from_line`` (by line number)."""
    cur = con.execute(
        "SELECT line, reason, raw, raw_bytes FROM rejects WHERE source_file = ? AND line >= ? ORDER BY line LIMIT ?",
        [file, from_line, limit],
    )
    return [_row(file, *r) for r in cur.fetchall()]


def source_name(path: str) -> str:
    """The name rows of ``path`` are stored under: ``<stdin>`` for ``-``, else the absolute path."""
    if path in ("-", STDIN_NAME):
        return STDIN_NAME
    return str(Path(path).expanduser().resolve())


def list_rejects(db_path: Path | str, file: str | None = None, limit: int | None = None) -> tuple[list[RejectRow], int]:
    """Rejected lines in the database at ``db_path`` (read-only), by file then line; ``file`` keeps
    one input's (named as given to ingest, or by its stored name). Returns (rows, total count)."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise IngestError(f"{db_path}: no such analyzer database")
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        raise IngestError(f"{db_path}: cannot open the database ({str(exc).splitlines()[0]})") from None
    try:
        has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'rejects'").fetchone()[0]
        if not has:
            raise IngestError(f"{db_path}: no rejects table (not a database written by ggen ingest)")
        where, params = "", []
        if file is not None:
            where, params = " WHERE source_file = ? OR source_file = ?", [file, source_name(file)]
        total = con.execute(f"SELECT count(*) FROM rejects{where}", params).fetchone()[0]
        sql = f"SELECT source_file, line, reason, raw, raw_bytes FROM rejects{where} ORDER BY source_file, line"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = [_row(*r) for r in con.execute(sql, params).fetchall()]
    finally:
        con.close()
    return rows, int(total)
