"""``ggen ingest``: load logs, traces and metric series into the analyzer database."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from console.cli.common import EXIT_FAILED, EXIT_NOT_FOUND, data_dir, echo_json, fail, safe_text

FORMAT_HELP = (
    "auto (default: detect per file), jsonl, logfmt, text (detect among the text formats), otlp, csv, "
    "or a text format's name such as syslog_rfc3164 (see --list-formats)."
)


def _list_formats() -> None:
    from analyzer.ingest import load_catalog

    catalog = load_catalog()
    rows = [
        ("jsonl", "JSON Lines, any common field names (GCP, ECS, pino, logrus, ...)"),
        ("logfmt", "key=value pairs"),
        ("otlp", "OpenTelemetry OTLP/JSON traces, logs and metrics"),
        ("csv", "CSV with a header (events, or metric series with a value column)"),
    ]
    rows += [(f.name, f.title) for f in catalog.text]
    width = max(len(r[0]) for r in rows)
    for name, title in rows:
        click.echo(f"{name:<{width}}  {title}")


def _reject_line(file: str, line: int, reason: str, raw: str) -> str:
    """``FILE:LINE: reason: raw``, escaped for the terminal."""
    shown = f": {raw}" if raw else ""
    return safe_text(f"{file}:{line}: {reason}{shown}")


def _rejects_command(db: str, file: str | None = None) -> str:
    """The command that lists every rejected line (of one file), quoted for a shell."""
    import shlex

    cmd = f"ggen ingest --rejects --db {shlex.quote(db)}"
    if file is not None:
        cmd += f" --file {shlex.quote(file)}"
    return safe_text(cmd)


def _print_summary(summary: Any, quiet: bool) -> None:
    if not quiet:
        for f in summary.files:
            name = safe_text(f.source)
            if f.status in ("unchanged", "duplicate", "skipped"):
                click.echo(f"{name}: skipped, {f.note}")
                continue
            extra = []
            if f.spans:
                extra.append(f"{f.spans:,} spans")
            if f.metrics:
                extra.append(f"{f.metrics:,} metric samples")
            if f.events:
                extra.append(f"{f.events:,} events")
            what = ", ".join(extra) or "no rows"
            status = "" if f.status == "ingested" else f" ({f.status})"
            slow = f"; read again line by line ({safe_text(f.slow_path)})" if f.slow_path else ""
            click.echo(
                f"{name}: {f.format}{status}, {f.lines_read:,} {f.unit} -> {what}, "
                f"{f.continuation_lines:,} continuation, {f.rejects:,} rejected, {f.seconds:.2f}s{slow}"
            )
            for r in f.first_rejects:
                click.echo("  " + _reject_line(f.source, r["line"], r["reason"], r["raw"]))
            more = f.rejects - len(f.first_rejects)
            if more > 0:
                click.echo(f"  ... and {more:,} more rejected; list them all: {_rejects_command(summary.db_path, f.source)}")
    mb = summary.bytes / 1e6
    rate = f", {mb / summary.seconds:.1f} MB/s" if summary.seconds > 0 and mb > 0 else ""
    click.echo(
        f"lines read {summary.lines_read:,} = ingested {summary.rows_ingested:,} + continuation {summary.continuation_lines:,}"
        f" + rejected {summary.rejects:,}  ({len(summary.files)} file(s), {summary.seconds:.2f}s{rate}) -> {summary.db_path}"
    )
    if summary.rejects and not quiet:
        click.echo(f"  list the rejected lines: {_rejects_command(summary.db_path)} (or query the 'rejects' table)")


def _list_rejects(db_path: Path, file: str | None, limit: int | None, as_json: bool) -> None:
    """Print the rejected lines kept in the database (``--rejects``)."""
    from analyzer.ingest import IngestError
    from analyzer.ingest.rejects import list_rejects

    try:
        rows, total = list_rejects(db_path, file=file, limit=limit)
    except IngestError as exc:
        code = EXIT_NOT_FOUND if "no such" in str(exc) else EXIT_FAILED
        fail(safe_text(str(exc)), code)
    if as_json:
        echo_json({"db_path": str(db_path), "total": total, "rejects": [r.to_dict() for r in rows]})
        return
    for r in rows:
        click.echo(_reject_line(r.file, r.line, r.reason, r.raw))
    shown = f"{len(rows):,} of {total:,}" if len(rows) < total else f"{total:,}"
    where = f" from {safe_text(file)}" if file is not None else ""
    click.echo(f"{shown} rejected line(s){where} in {safe_text(str(db_path))}", err=bool(rows))


class _Bar:
    """A rich progress bar on stderr that appears only when ingest runs longer than a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.progress: Any = None
        self.task: Any = None

    def __call__(self, update: Any) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            if time.monotonic() - self.started < 1.0:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

            self.progress = Progress(
                TextColumn("ingest"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=max(update.all_bytes_total, 1))
        label = f"file {update.file_index + 1}/{update.file_count}"
        self.progress.update(self.task, completed=update.all_bytes_done, description=label)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@click.command("ingest")
@click.argument("paths", nargs=-1)
@click.option("--db", "db", type=click.Path(dir_okay=False), default=None, help="DuckDB file to load into (default: analyzer.duckdb in the data directory).")
@click.option("--format", "fmt", default="auto", show_default=True, help=FORMAT_HELP)
@click.option("--tz", default=None, help="Time zone for timestamps written without an offset (IANA name; default UTC).")
@click.option("--service", default=None, help="Service name for records that do not name one.")
@click.option("--parquet-out", type=click.Path(file_okay=False), default=None, help="Also write the tables as Hive-partitioned Parquet (by date and service) under DIR.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no per-file lines; only the accounting line.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--list-formats", is_flag=True, help="List the formats and exit.")
@click.option("--rejects", "show_rejects", is_flag=True, help="List the rejected lines kept in the database (FILE:LINE: reason: raw) instead of ingesting.")
@click.option("--file", "rejects_file", default=None, metavar="PATH", help="With --rejects: only this input's rejected lines.")
@click.option("--limit", "rejects_limit", type=click.IntRange(min=1), default=None, help="With --rejects: at most N lines.")
def ingest(
    paths: tuple[str, ...],
    db: str | None,
    fmt: str,
    tz: str | None,
    service: str | None,
    parquet_out: str | None,
    quiet: bool,
    as_json: bool,
    list_formats: bool,
    show_rejects: bool,
    rejects_file: str | None,
    rejects_limit: int | None,
) -> None:
    """Load log files, traces and metric series into the analyzer database.

    PATHS may be files, globs, directories (read recursively), .gz files, or - for standard
    input. Formats are detected per file. Re-ingesting an unchanged file adds nothing; a file that
    grew adds its new lines. Every line is accounted for: ingested, continuation of the record
    above (stack traces), or rejected into the 'rejects' table with its reason; the first few
    rejected lines of each file are printed as FILE:LINE: reason, and `ggen ingest --rejects`
    lists them all.
    """
    if list_formats:
        _list_formats()
        return
    if show_rejects:
        if paths:
            raise click.UsageError("--rejects lists what an earlier ingest rejected; give no PATH")
        _list_rejects(Path(db) if db else data_dir().analyzer_db_path, rejects_file, rejects_limit, as_json)
        return
    if rejects_file is not None or rejects_limit is not None:
        raise click.UsageError("--file and --limit go with --rejects")
    if not paths:
        raise click.UsageError("give at least one PATH (a file, glob, directory, or - for stdin)")
    from analyzer.ingest import IngestError, ingest_paths, load_catalog, validate_format, validate_tz

    try:
        validate_format(fmt, load_catalog())
    except IngestError as exc:
        raise click.BadParameter(f"{fmt!r} is not a known format; " + str(exc).split("(", 1)[1].rstrip(")"), param_hint="--format") from None
    try:
        validate_tz(tz)
    except IngestError:
        raise click.BadParameter(f"{tz!r} is not a known time zone (use an IANA name such as Europe/Berlin)", param_hint="--tz") from None

    db_path = Path(db) if db else data_dir().ensure().analyzer_db_path
    bar = _Bar(enabled=not quiet and not as_json and sys.stderr.isatty())
    try:
        summary = ingest_paths(
            list(paths),
            db_path,
            fmt=fmt,
            tz=tz,
            service=service,
            quiet=quiet,
            parquet_out=Path(parquet_out) if parquet_out else None,
            progress=bar,
        )
    except IngestError as exc:
        bar.close()
        text = str(exc)
        code = EXIT_NOT_FOUND if ("no such file" in text or "no files match" in text) else EXIT_FAILED
        fail(safe_text(text), code)
    except OSError as exc:
        bar.close()
        fail(safe_text(f"{exc.filename or db_path}: {exc.strerror or exc}"), EXIT_FAILED)
    except Exception as exc:  # a DuckDB error (disk full, a damaged database file): one line, no traceback
        import duckdb

        bar.close()
        if not isinstance(exc, duckdb.Error):
            raise
        fail(safe_text(f"{db_path}: {str(exc).splitlines()[0]}"), EXIT_FAILED)
    bar.close()
    if as_json:
        echo_json(summary.to_dict())
    else:
        _print_summary(summary, quiet)
    if not summary.balanced:
        fail("accounting check failed: lines read differ from ingested + continuation + rejected", EXIT_FAILED)
