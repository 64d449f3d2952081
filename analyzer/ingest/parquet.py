"""Hive-partitioned Parquet export of the normalized tables, and querying such a dataset with
the same SQL (views named like the tables) from DuckDB or any engine that reads Hive layouts."""
from __future__ import annotations

from pathlib import Path

import duckdb

from analyzer.ingest.sql import lit

# table -> the timestamp column whose UTC date partitions it
PARTITIONED: dict[str, str] = {"events": "ts", "spans": "start_ts", "metrics": "ts"}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: Path | str) -> dict[str, int]:
    """Write ``events``, ``spans`` and ``metrics`` as ``out_dir/<table>/date=YYYY-MM-DD/service=NAME/*.parquet``
    (a NULL service is ``__HIVE_DEFAULT_PARTITION__``) and ``rejects`` as one file. Each table's
    folder is rewritten, so the dataset mirrors the database. Returns rows written per table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for table, ts_col in PARTITIONED.items():
        target = out_dir / table
        n = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        written[table] = n
        if n == 0:
            continue
        con.execute(
            f"""COPY (
                SELECT *, CAST(timezone('UTC', {ts_col}) AS DATE) AS date FROM {table} ORDER BY {ts_col}
            ) TO {lit(str(target))} (FORMAT parquet, PARTITION_BY (date, service), OVERWRITE true, COMPRESSION zstd)"""
        )
    written["rejects"] = con.execute("SELECT count(*) FROM rejects").fetchone()[0]
    con.execute(f"COPY rejects TO {lit(str(out_dir / 'rejects.parquet'))} (FORMAT parquet)")
    return written


def is_parquet_dataset(path: Path | str) -> bool:
    """Whether ``path`` is a directory written by :func:`export_parquet` (``ggen ingest --parquet-out``)."""
    root = Path(path)
    if not root.is_dir():
        return False
    if (root / "rejects.parquet").is_file():
        return True
    return any(next((root / t).glob("date=*/service=*/*.parquet"), None) is not None for t in PARTITIONED)


def attach_parquet(con: duckdb.DuckDBPyConnection, dataset_dir: Path | str) -> list[str]:
    """Create views ``events``, ``spans``, ``metrics`` and ``rejects`` over a dataset written by
    :func:`export_parquet`, with the tables' column names and order, so the analyzer's queries
    run unchanged against Parquet. Tables absent from the dataset become empty views."""
    from analyzer.ingest.schema import DDL

    root = Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such Parquet dataset directory")
    scratch = duckdb.connect()
    for stmt in DDL:
        scratch.execute(stmt)
    made: list[str] = []
    for table in (*PARTITIONED, "rejects"):
        cols = _columns(scratch, table)
        col_list = ", ".join(f'"{c}"' for c in cols)
        if table == "rejects":
            files = [root / "rejects.parquet"] if (root / "rejects.parquet").exists() else []
            src = f"read_parquet({lit(str(root / 'rejects.parquet'))})" if files else None
        else:
            files = list((root / table).glob("date=*/service=*/*.parquet"))
            src = (
                f"read_parquet({lit(str(root / table / '**' / '*.parquet'))}, hive_partitioning = true, "
                "hive_types = {'date': DATE, 'service': VARCHAR})"
                if files
                else None
            )
        if src is None:
            types = scratch.execute(f"DESCRIBE {table}").fetchall()
            empty = ", ".join(f"CAST(NULL AS {t[1]}) AS \"{t[0]}\"" for t in types)
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {empty} WHERE false")
        else:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {col_list} FROM {src}")
        made.append(table)
    scratch.close()
    return made


def open_parquet_dataset(dataset_dir: Path | str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose ``events``/``spans``/``metrics``/``rejects`` read the dataset."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    attach_parquet(con, dataset_dir)
    return con
