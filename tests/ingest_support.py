"""Helpers shared by the ingest tests: run an ingest into a temporary database and read rows back."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from analyzer.ingest import IngestSummary, ingest_paths, open_db

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def ingest(tmp_path: Path, *paths: str | Path, **kwargs: Any) -> IngestSummary:
    """Ingest ``paths`` into ``tmp_path/a.duckdb`` and check the accounting identity."""
    summary = ingest_paths([str(p) for p in paths], tmp_path / "a.duckdb", **kwargs)
    for f in summary.files:
        assert f.balanced, f.to_dict()
    assert summary.balanced
    return summary


def rows(tmp_path: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Query the test database; rows as dicts."""
    con = open_db(tmp_path / "a.duckdb")
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def iso(value: Any) -> str | None:
    """A TIMESTAMPTZ as RFC 3339 UTC with the fraction trimmed (2026-01-25T14:15:00.5Z)."""
    if value is None:
        return None
    text = value.astimezone(__import__("datetime").timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path
