"""Ingest logs, traces and metric series into the analyzer's DuckDB database.

Public API (the CLI and the sample-log simulator call these):

- :func:`ingest_paths` loads files, globs, directories, .gz files and ``-`` (stdin).
- :func:`open_db` opens the database with the normalized schema.
- :func:`export_parquet`, :func:`attach_parquet`, :func:`open_parquet_dataset` move the tables
  to a Hive-partitioned Parquet dataset and query it with the same SQL.
- :func:`load_catalog` reads the declarative formats in ``runbooks/log-formats``.
"""
from analyzer.ingest.detect import FORMAT_CHOICES, Detection, detect
from analyzer.ingest.formats import FormatCatalog, TextFormat, load_catalog
from analyzer.ingest.parquet import attach_parquet, export_parquet, is_parquet_dataset, open_parquet_dataset
from analyzer.ingest.pipeline import FileSummary, IngestSummary, ProgressUpdate, ingest_paths, validate_format, validate_tz
from analyzer.ingest.schema import create_schema, open_db
from analyzer.ingest.sources import IngestError

__all__ = [
    "FORMAT_CHOICES",
    "Detection",
    "FileSummary",
    "FormatCatalog",
    "IngestError",
    "IngestSummary",
    "ProgressUpdate",
    "TextFormat",
    "attach_parquet",
    "create_schema",
    "detect",
    "export_parquet",
    "ingest_paths",
    "is_parquet_dataset",
    "load_catalog",
    "open_db",
    "open_parquet_dataset",
    "validate_format",
    "validate_tz",
]
