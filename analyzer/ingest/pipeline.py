"""Ingest orchestration: parsing inside DuckDB, Python only for detection, the rare slow paths
(sanitizing bad bytes, OTLP, CSV, JSON arrays) and bookkeeping. Each file is one transaction,
except line files of events: their rows are committed first and numbered, finished and recorded
in a second transaction (see ``_ingest_one``); a run killed in between leaves only unnumbered
rows, which the next run deletes."""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
import zlib
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import duckdb
import orjson

from analyzer.ingest import sql as q
from analyzer.ingest.detect import FORMAT_CHOICES, SNIFF_BYTES, Detection, detect
from analyzer.ingest.formats import FormatCatalog, load_catalog
from analyzer.ingest.rejects import first_rejects
from analyzer.ingest.schema import configure, create_schema
from analyzer.ingest.sources import (
    STDIN_NAME,
    GzipSalvage,
    HashingReader,
    IngestError,
    Source,
    expand,
    iter_chunks,
    iter_lines,
    sanitize_chunk,
)

# DuckDB's memory limit while ingesting (GGEN_INGEST_MEMORY overrides). Parsing streams, and big
# sorts (re-ordering a shuffled file) spill to disk. The limit decides how many threads write:
# the ordered bulk insert (INSERT ... SELECT keeps file order, which line numbers rely on) runs
# one writer per 48 MB it may reserve (4 MB for each of the 12 columns of events) and reserves at
# most a quarter of the limit, so under about 224 MB it writes on one thread whatever the core
# count. The limit is a ceiling: a second writer costs about 40 MB more in practice, and once a
# file's rows are committed the limit drops to MIN_MEMORY_MB for the rest of its work.
MIN_MEMORY_MB = 96
WRITER_MEMORY_MB = 4 * 12 * 4  # limit needed per writer thread beyond the first
MAX_MEMORY_MB = 1024
# Row groups written by ingest hold 28,672 rows (DuckDB's default is 122,880). DuckDB's CSV reader
# hands the insert batches of 1 MB of lines, and the ordered insert holds batches in memory until
# a run of them fills 90-100% of one, two or three row groups, then copies them into it. Smaller
# row groups mean shorter runs (2 batches of syslog, 5 of JSON Lines rather than 8 and 20): about
# 40 MB less memory and 0.1 s less CPU per 1M lines, and time-window queries skip finer ranges;
# the file grows by a few per cent (JSON Lines) to 40% (syslog, whose rows compress best). The
# size belongs to the attached database, so other readers and writers are unaffected.
ROW_GROUP_ROWS = 14 * 2048
CHUNK_BYTES = 32 << 20
BATCH_ROWS = 50_000


@dataclass
class FileSummary:
    """What happened to one input. ``unit`` is what ``lines_read`` counts: lines, or records
    for CSV, JSON arrays and OTLP. The identity ``lines_read = rows_ingested +
    continuation_lines + rejects`` holds for every ingested file."""

    source: str
    format: str = ""
    kind: str = "events"
    status: str = "ingested"  # ingested | appended | replaced | unchanged | duplicate
    unit: str = "lines"
    lines_read: int = 0
    events: int = 0
    spans: int = 0
    metrics: int = 0
    continuation_lines: int = 0
    rejects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    note: str = ""
    slow_path: str = ""
    # The first few rejected lines of this run (line, reason, raw), so a report can say what and where.
    first_rejects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_ingested(self) -> int:
        return self.events + self.spans + self.metrics

    @property
    def balanced(self) -> bool:
        """The accounting identity for this file."""
        return self.lines_read == self.rows_ingested + self.continuation_lines + self.rejects

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows_ingested"] = self.rows_ingested
        d["balanced"] = self.balanced
        return d


@dataclass
class IngestSummary:
    """The outcome of one ``ingest_paths`` call."""

    db_path: str
    files: list[FileSummary] = field(default_factory=list)
    seconds: float = 0.0
    parquet_dir: str | None = None

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def lines_read(self) -> int:
        return self.total("lines_read")

    @property
    def rows_ingested(self) -> int:
        return self.total("rows_ingested")

    @property
    def continuation_lines(self) -> int:
        return self.total("continuation_lines")

    @property
    def rejects(self) -> int:
        return self.total("rejects")

    @property
    def bytes(self) -> int:
        return self.total("bytes")

    @property
    def balanced(self) -> bool:
        return self.lines_read == self.rows_ingested + self.continuation_lines + self.rejects

    def to_dict(self) -> dict[str, Any]:
        return {
            "db_path": self.db_path,
            "parquet_dir": self.parquet_dir,
            "seconds": round(self.seconds, 3),
            "lines_read": self.lines_read,
            "rows_ingested": self.rows_ingested,
            "events": self.total("events"),
            "spans": self.total("spans"),
            "metrics": self.total("metrics"),
            "continuation_lines": self.continuation_lines,
            "rejects": self.rejects,
            "bytes": self.bytes,
            "balanced": self.balanced,
            "files": [f.to_dict() for f in self.files],
        }


@dataclass(frozen=True)
class ProgressUpdate:
    """Sent to the ``progress`` callback about four times a second while a file is read."""

    source: str
    file_index: int
    file_count: int
    bytes_done: int
    bytes_total: int
    all_bytes_done: int
    all_bytes_total: int


ProgressCallback = Callable[[ProgressUpdate], None]


def validate_tz(tz: str | None) -> str:
    """The time-zone name to read offset-less timestamps in (UTC when None); IngestError if unknown."""
    if tz is None or tz.upper() in ("UTC", "Z"):
        return "UTC"
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise IngestError(f"--tz {tz!r}: unknown time zone (use an IANA name such as Europe/Berlin)") from None
    return tz


def validate_format(fmt: str, catalog: FormatCatalog) -> str:
    """The format choice, with ``text:NAME`` reduced to NAME; IngestError if unknown."""
    name = fmt[5:] if fmt.startswith("text:") else fmt
    if name in FORMAT_CHOICES or name in catalog.text_names:
        return name
    choices = ", ".join([*FORMAT_CHOICES, *catalog.text_names])
    raise IngestError(f"--format {fmt!r}: unknown format (choose from {choices})")


def ingest_paths(
    paths: list[str | Path],
    db_path: Path | str,
    fmt: str = "auto",
    tz: str | None = None,
    service: str | None = None,
    quiet: bool = True,
    parquet_out: Path | str | None = None,
    progress: ProgressCallback | None = None,
    *,
    stdin: BinaryIO | None = None,
    memory_limit: str | None = None,
    catalog: FormatCatalog | None = None,
) -> IngestSummary:
    """Load files, globs, directories, .gz files and ``-`` (stdin) into the DuckDB at ``db_path``.

    Each file is detected (or read as ``fmt``) and loaded on its own (see the module notes); a file already
    ingested with the same size and mtime, or with the same content under another name, is
    skipped, a grown file gets only its new lines, a rewritten file replaces its old rows.
    Raises :class:`IngestError` for a bad request (missing path, unknown format or zone); bad
    lines never raise, they become ``rejects``. ``quiet`` suppresses progress callbacks.
    """
    started = time.perf_counter()
    catalog = catalog or load_catalog()
    fmt = validate_format(fmt, catalog)
    zone = validate_tz(tz)
    db_path = Path(db_path)
    sources = expand(list(paths), stdin=stdin)
    summary = IngestSummary(str(db_path))
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {q.lit(str(db_path))} AS analyzer (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
        con.execute("USE analyzer")
        # Spill next to the database, as a connection opened on the file would (not in the cwd).
        con.execute(f"SET temp_directory = {q.lit(str(db_path) + '.tmp')}")
        # Let the allocator hand freed memory back while the writers run: a lower peak RSS
        # (about 10 MB on 1M syslog lines) for no measurable CPU.
        con.execute("SET allocator_background_threads = true")
    except duckdb.Error as exc:
        con.close()
        raise IngestError(f"{db_path}: cannot open the database ({str(exc).splitlines()[0]})") from None
    try:
        threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
        chosen = memory_limit or os.environ.get("GGEN_INGEST_MEMORY")
        limits = _Limits(chosen, chosen) if chosen else _Limits(default_memory_limit(threads), f"{MIN_MEMORY_MB}MB")
        configure(con, memory_limit=limits.insert)
        create_schema(con)
        con.execute(f"SET TimeZone = {q.lit(zone)}")
        total_bytes = sum(s.size for s in sources)
        done_bytes = 0
        for i, src in enumerate(sources):
            report = _progress_for(progress, src, i, len(sources), done_bytes, total_bytes) if progress is not None and not quiet else None
            try:
                fs = _ingest_one(con, src, catalog, fmt, service, report, limits)
            finally:
                if src.temp:
                    src.path.unlink(missing_ok=True)
            done_bytes += src.size
            summary.files.append(fs)
            if report is not None:
                report(src.size)
        con.execute("SET TimeZone = 'UTC'")
        if parquet_out is not None:
            from analyzer.ingest.parquet import export_parquet

            export_parquet(con, Path(parquet_out))
            summary.parquet_dir = str(parquet_out)
    finally:
        con.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _progress_for(progress: ProgressCallback, src: Source, index: int, count: int, before: int, total: int) -> Callable[[int], None]:
    """A bytes-read callback for one file that reports whole-run progress."""

    def report(n: int) -> None:
        n = min(n, src.size)
        progress(ProgressUpdate(src.name, index, count, n, src.size, before + n, total))

    return report


# --------------------------------------------------------------------------------------------
# One file


def _previous(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    if name == STDIN_NAME:
        return None
    row = con.execute(
        "SELECT size, epoch_us(mtime), sha256, lines_read, format, kind, rows_ingested, continuation_lines, rejects "
        "FROM ingested_files WHERE path = ? ORDER BY ingested_at DESC LIMIT 1",
        [name],
    ).fetchone()
    if row is None:
        return None
    keys = ("size", "mtime_us", "sha256", "lines_read", "format", "kind", "rows_ingested", "continuation_lines", "rejects")
    return dict(zip(keys, row))


def _hash_prefix(raw: BinaryIO, nbytes: int) -> "hashlib._Hash":
    h = hashlib.sha256()
    left = nbytes
    while left > 0:
        block = raw.read(min(1 << 20, left))
        if not block:
            break
        h.update(block)
        left -= len(block)
    return h


class _Run:
    """Per-file state shared by the format loaders."""

    def __init__(self, con: duckdb.DuckDBPyConnection, src: Source, fs: FileSummary, catalog: FormatCatalog,
                 service: str | None, progress: Callable[[int], None] | None) -> None:
        self.con, self.src, self.fs, self.catalog, self.service = con, src, fs, catalog, service
        self.progress = progress
        self.reader: HashingReader | None = None


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    catalog: FormatCatalog,
    forced: str,
    service: str | None,
    progress: Callable[[int], None] | None,
    limits: "_Limits | None" = None,
) -> FileSummary:
    t0 = time.perf_counter()
    if limits is not None:
        con.execute(f"SET memory_limit = {q.lit(limits.insert)}")
    fs = FileSummary(src.name, bytes=src.size)
    if _is_sample_manifest(src):
        fs.status, fs.format, fs.kind, fs.bytes = "skipped", "json", "manifest", 0
        fs.note = "a ggen sample-logs manifest (the injected faults and incidents), not log data"
        return fs
    # Rows a run committed but did not get to number (it was killed between its two phases).
    con.execute("DELETE FROM events WHERE source_file = ? AND source_line IS NULL", [src.name])
    prev = _previous(con, src.name)
    if prev and prev["size"] == src.size and prev["mtime_us"] == src.mtime_ns // 1000:
        fs.status, fs.format, fs.kind, fs.bytes = "unchanged", prev["format"], prev["kind"], 0
        fs.note = "already ingested (same size and modification time)"
        return fs

    raw = src.open_raw()
    try:
        hasher = hashlib.sha256()
        first_line = 1
        tail_from = 0
        replace = prev is not None
        det: Detection | None = None
        if prev and not src.gz and src.size > prev["size"] and prev["format"] in _line_formats(catalog):
            h = _hash_prefix(raw, prev["size"])
            if h.hexdigest() == prev["sha256"]:
                hasher, first_line, replace = h, int(prev["lines_read"]) + 1, False
                tail_from = prev["size"]
                fs.status = "appended"
                det = Detection(prev["format"], prev["kind"], 1.0)
            else:
                raw.seek(0)
        if prev and fs.status != "appended":
            fs.status = "replaced"
        if det is None:
            det = detect(src.head(SNIFF_BYTES), catalog, forced)
        fs.format, fs.kind = det.format, det.kind
        if det.format in RECORD_FORMATS:
            fs.unit = "records"
        run = _Run(con, src, fs, catalog, service, progress)

        con.execute("BEGIN TRANSACTION")
        try:
            if replace and not _two_phase(det):
                _delete_source(con, src.name)
            finish: Callable[[], None] | None = None
            if det.format in RECORD_FORMATS:
                reader = HashingReader(raw, hasher)
                run.reader = reader
                salvage = GzipSalvage(reader) if src.gz else None
                # A .gz file is known by its decompressed content, so a plain copy is a duplicate.
                content = HashingReader(salvage) if salvage is not None else None  # type: ignore[arg-type]
                stream: BinaryIO = content if content is not None else reader  # type: ignore[assignment]
                _run_records_format(run, det, stream)
                if salvage is not None and salvage.damage:
                    _insert_rejects(con, src.name, [(fs.lines_read + 1, f"{salvage.damage}; nothing after this point could be read", b"", 0)])
                    fs.rejects += 1
                    fs.lines_read += 1
                # Read what is left so the hash covers the whole file (a gzip trailer, say).
                while stream.read(1 << 20):
                    pass
                while reader.read(1 << 20):
                    pass
                damaged = salvage is not None and bool(salvage.damage)
                sha = content.hasher.hexdigest() if content is not None and not damaged else reader.hasher.hexdigest()
            else:
                sha, finish = _run_lines(run, det, raw, hasher, first_line, tail_from)
            other = "" if src.name == STDIN_NAME else src.name  # stdin runs are compared with each other too
            dup = con.execute("SELECT path FROM ingested_files WHERE sha256 = ? AND path <> ? LIMIT 1", [sha, other]).fetchone()
            if dup is None and prev is not None and prev["sha256"] == sha:
                dup = (src.name,)
            if dup is not None:
                con.execute("ROLLBACK")
                if dup[0] == src.name and src.name != STDIN_NAME:
                    _touch(con, src)
                    note, status = "same content as already ingested (only the modification time changed)", "unchanged"
                else:
                    note, status = f"same content as {dup[0]}, already ingested", "duplicate"
                out = FileSummary(src.name, det.format, det.kind, status, fs.unit, note=note)
                out.seconds = time.perf_counter() - t0
                return out
            if finish is not None:
                # Two phases: commit the new rows (line numbers still NULL, the old rows of a
                # replaced file still there), then number them, move rejects and continuations,
                # drop the old rows and record the file. Numbering committed rows costs one
                # column at the next checkpoint instead of rewriting every row into the WAL.
                # A run killed in between leaves rows with NULL lines that the next run deletes.
                con.execute("COMMIT")
                if limits is not None:
                    # The second phase needs little memory: a smaller limit evicts the blocks
                    # the insert left cached instead of growing past them.
                    con.execute(f"SET memory_limit = {q.lit(limits.finish)}")
                con.execute("BEGIN TRANSACTION")
                if replace:
                    _delete_source(con, src.name, numbered_only=True)
                finish()
            _record_file(con, src, sha, fs, prev)
            con.execute("COMMIT")
            if fs.rejects:
                fs.first_rejects = [r.to_dict() for r in first_rejects(con, src.name, from_line=first_line)]
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise IngestError(f"{src.name}: cannot read ({exc})") from None
    finally:
        raw.close()
    fs.seconds = time.perf_counter() - t0
    return fs


RECORD_FORMATS = ("otlp", "csv", "json-array")
# The top-level keys of the manifest.json that `ggen sample-logs` writes next to its logs.
SAMPLE_MANIFEST_KEYS = frozenset({"scenario", "seed", "window", "faults", "incidents", "files"})


def _is_sample_manifest(src: Source) -> bool:
    """Whether ``src`` is the manifest of a sample-logs set: a small ``manifest.json`` holding
    one JSON object with the manifest's keys, its ``files`` mapping names to line counts. Any
    other JSON file, whatever its name, is ingested."""
    if src.gz or src.name == STDIN_NAME or Path(src.name).name != "manifest.json" or src.size > (1 << 20):
        return False
    try:
        doc = orjson.loads(src.path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(doc, dict) or not SAMPLE_MANIFEST_KEYS <= doc.keys():
        return False
    files = doc["files"]
    return isinstance(files, dict) and all(isinstance(v, dict) and "lines" in v for v in files.values())


def _line_formats(catalog: FormatCatalog) -> set[str]:
    """Formats read line by line (a grown file of these gets only its new lines read)."""
    return {"jsonl", "logfmt", *catalog.text_names}


def _delete_source(con: duckdb.DuckDBPyConnection, name: str, numbered_only: bool = False) -> None:
    """Delete a file's rows; ``numbered_only`` keeps its events whose lines are not numbered yet
    (the rows of the run in progress)."""
    for table in ("events", "spans", "metrics", "rejects"):
        extra = " AND source_line IS NOT NULL" if numbered_only and table == "events" else ""
        con.execute(f"DELETE FROM {table} WHERE source_file = ?{extra}", [name])


def _touch(con: duckdb.DuckDBPyConnection, src: Source) -> None:
    con.execute("UPDATE ingested_files SET mtime = make_timestamptz(?::BIGINT), size = ? WHERE path = ?", [src.mtime_ns // 1000, src.size, src.name])


def _record_file(con: duckdb.DuckDBPyConnection, src: Source, sha: str, fs: FileSummary, prev: dict[str, Any] | None) -> None:
    base = (0, 0, 0, 0)
    if fs.status == "appended" and prev:
        base = (prev["lines_read"], prev["rows_ingested"], prev["continuation_lines"], prev["rejects"])
    if src.name != STDIN_NAME:
        con.execute("DELETE FROM ingested_files WHERE path = ?", [src.name])
    con.execute(
        "INSERT INTO ingested_files VALUES (?, ?, make_timestamptz(?::BIGINT), ?, ?, ?, ?, ?, ?, ?, now())",
        [
            src.name, src.size, src.mtime_ns // 1000, sha, fs.format, fs.kind,
            base[0] + fs.lines_read, base[1] + fs.rows_ingested, base[2] + fs.continuation_lines, base[3] + fs.rejects,
        ],
    )


def _insert_rejects(con: duckdb.DuckDBPyConnection, name: str, rows: list[tuple[int, str, bytes, int]]) -> None:
    if rows:
        con.executemany(
            "INSERT INTO rejects VALUES (?, ?, ?, ?, ?)",
            [(name, line, reason, raw, nbytes) for line, reason, raw, nbytes in rows],
        )


# --------------------------------------------------------------------------------------------
# Line formats: one parallel DuckDB statement over the file, line numbers from row order


@dataclass
class _JsonSample:
    """What the sampled lines of a JSON Lines file say: their top-level keys, and whether every
    one of them is a JSON object (then the file is parsed without ``try()``)."""

    keys: set[str] = field(default_factory=set)
    clean: bool = True

    def add(self, lines: list[bytes]) -> None:
        for line in lines:
            if line in (b"", b"\r"):
                continue  # an empty line is never parsed
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.clean = False
                continue
            if isinstance(obj, dict):
                self.keys.update(obj)
            else:
                self.clean = False


def _sample_lines(block: bytes, at_start: bool, at_end: bool, limit: int = 64) -> list[bytes]:
    """Whole lines of ``block``: its first ``limit`` (and, at the end of the file, its last)."""
    lines = block.split(b"\n")
    if not at_start:
        lines = lines[1:]  # the block starts inside a line
    if at_end:
        if lines and lines[-1] == b"":
            lines.pop()  # the file ends with a newline
        return lines[:limit] + lines[max(limit, len(lines) - limit) :]
    return lines[:-1][:limit]  # the last piece runs past the block


def _file_keys(path: Path, gz: bool) -> _JsonSample:
    """Lines sampled from the start, middle and end of a JSON Lines file (the start only for .gz)."""
    sample = _JsonSample()
    if gz:
        with open(path, "rb") as f:
            head = GzipSalvage(f).read(SNIFF_BYTES + 1)
        sample.add(_sample_lines(head[:SNIFF_BYTES], True, len(head) <= SNIFF_BYTES))
        return sample
    size = path.stat().st_size
    with open(path, "rb") as f:
        for offset in sorted({0, size // 4, size // 2, (3 * size) // 4, max(0, size - SNIFF_BYTES)}):
            f.seek(offset)
            block = f.read(SNIFF_BYTES)
            sample.add(_sample_lines(block, offset == 0, offset + len(block) >= size))
    return sample


@dataclass
class _Scan:
    """One pass over a file's bytes: its hash, its line count, and whether DuckDB can read it."""

    sha256: str = ""
    lines: int = 0
    problem: str = ""


def _scan(raw: BinaryIO, hasher: Any, gz: bool) -> _Scan:
    """Hash the content from ``raw``'s position on (decompressed for .gz, so a plain copy of a
    .gz file is a duplicate; the stored bytes for a damaged .gz), count lines, look for bytes
    that make DuckDB's line reader split or refuse a line (the marker, a lone CR)."""
    out = _Scan()
    content = hashlib.sha256() if gz else None
    marker = q.MARKER.encode()
    reader = HashingReader(raw, hasher)
    stream: BinaryIO = gzip.GzipFile(fileobj=reader, mode="rb") if gz else reader  # type: ignore[assignment]
    tail = b""
    last = b""
    count = 0
    blocks = iter(lambda: stream.read(1 << 20), b"")
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            break
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            out.problem = f"damaged gzip data ({exc})"
            break
        count += block.count(b"\n")
        if content is not None:
            content.update(block)
        # Both checks look for a byte that real logs almost never hold (memchr speed); only a
        # block that has one pays for the exact test, which spans the block boundary.
        if not out.problem and (b"\x01" in block or b"\r" in block or tail):
            joined = tail + block
            if marker in joined:
                out.problem = "control bytes \\x01\\x02\\x03 in a line"
            else:
                ncr = joined.count(b"\r")
                if ncr and ncr != joined.count(b"\r\n") + (1 if joined.endswith(b"\r") else 0):
                    out.problem = "carriage return inside a line"
            # Carry over only a tail that could start a marker or end in a CR.
            tail = joined[-3:] if (b"\x01" in joined[-3:] or joined.endswith(b"\r")) else b""
        last = block[-1:]
    while reader.read(1 << 20):
        pass
    out.lines = count + (1 if last and last != b"\n" else 0)
    damaged = out.problem.startswith("damaged gzip")
    out.sha256 = content.hexdigest() if content is not None and not damaged else reader.hasher.hexdigest()
    return out


def _sanitized_copy(raw: BinaryIO, gz: bool, first_line: int) -> tuple[Path, int, list[tuple[int, str, bytes, int]]]:
    """The slow path: a temporary copy DuckDB can read, each unreadable line replaced by the
    marker; returns (path, lines, rejects)."""
    fd, name = tempfile.mkstemp(prefix="ggen-clean-", suffix=".log")
    salvage = GzipSalvage(raw) if gz else None
    stream: BinaryIO = salvage if salvage is not None else raw  # type: ignore[assignment]
    lines = 0
    rejects: list[tuple[int, str, bytes, int]] = []
    with os.fdopen(fd, "wb") as out:
        for chunk in iter_chunks(stream, CHUNK_BYTES, first_line):
            if not chunk.sanitized:
                chunk = sanitize_chunk(chunk)
            out.write(chunk.data)
            lines += chunk.nlines
            rejects.extend(chunk.rejects)
        if salvage is not None and salvage.damage:
            # Every line before the damage is kept; what cannot be decompressed is one reject.
            out.write(q.MARKER.encode() + b"\n")
            rejects.append((first_line + lines, f"{salvage.damage}; nothing after this point could be read", b"", 0))
            lines += 1
    return Path(name), lines, rejects


class _Poller:
    """Forwards DuckDB's progress on the running statement to a bytes-read callback."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: Callable[[int], None] | None, size: int) -> None:
        self.con, self.report, self.size = con, report, size
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if report is not None:
            self._thread = threading.Thread(target=self._run, name="ingest-progress", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                pct = self.con.query_progress()
            except Exception:  # nothing running at this instant
                continue
            if pct is not None and pct >= 0 and self.report is not None:
                self.report(int(self.size * min(pct, 100.0) / 100.0))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)


def _two_phase(det: Detection) -> bool:
    """Whether a file's rows are committed before their lines are numbered (see _ingest_one)."""
    return det.format not in RECORD_FORMATS and det.kind == "events" and det.format != "unknown"


def _run_lines(
    run: _Run, det: Detection, raw: BinaryIO, hasher: Any, first_line: int, tail_from: int
) -> tuple[str, Callable[[], None] | None]:
    """Load a line-oriented file; returns the content hash and, for events, the second phase
    (number the lines, move rejects and continuations) to run after the rows are committed.
    ``tail_from`` > 0 reads only the bytes after that offset (a grown file), numbering lines
    from ``first_line``."""
    con, fs, catalog, src = run.con, run.fs, run.catalog, run.src
    read_path, cleanup = src.path, []
    if tail_from:
        fd, name = tempfile.mkstemp(prefix="ggen-tail-", suffix=".log")
        with os.fdopen(fd, "wb") as out:
            raw.seek(tail_from)
            shutil.copyfileobj(raw, out, 1 << 20)
        raw.seek(tail_from)
        read_path = Path(name)
        cleanup.append(read_path)
    sample = _file_keys(read_path, src.gz and not tail_from) if det.format == "jsonl" and det.kind == "events" else None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            scan_future = pool.submit(_scan, raw, hasher, src.gz)
            slow = ""
            try:
                try:
                    _load_lines(run, det, read_path, src.gz and not tail_from, first_line, sample)
                except duckdb.Error as exc:
                    if sample is None or not sample.clean or _reader_problem(exc):
                        raise
                    # A line the sample did not see is no JSON object: parse again, line by line safe.
                    sample.clean = False
                    con.execute("ROLLBACK")
                    con.execute("BEGIN TRANSACTION")
                    if fs.status == "replaced" and not _two_phase(det):
                        _delete_source(con, src.name)
                    fs.events = fs.metrics = fs.rejects = 0
                    _load_lines(run, det, read_path, src.gz and not tail_from, first_line, sample)
            except duckdb.Error as exc:
                slow = _reader_problem(exc)
                if not slow:
                    raise
            scan = scan_future.result()
        staged = fs.events + fs.metrics + fs.rejects  # every line staged exactly one row
        if not slow and scan.problem:
            slow = scan.problem
        if not slow and staged != scan.lines:
            slow = f"line count check ({staged} rows for {scan.lines} lines)"
        py_rejects: list[tuple[int, str, bytes, int]] = []
        if slow:
            con.execute("ROLLBACK")
            con.execute("BEGIN TRANSACTION")
            if fs.status == "replaced" and not _two_phase(det):
                _delete_source(con, src.name)
            fs.slow_path = slow
            fs.events = fs.metrics = fs.rejects = fs.continuation_lines = 0
            with src.open_raw() as again:
                again.seek(tail_from)
                clean, nlines, py_rejects = _sanitized_copy(again, src.gz and not tail_from, first_line)
            cleanup.append(clean)
            if sample is not None:
                sample.clean = False
            _load_lines(run, det, clean, False, first_line, sample)
            # Every line of the clean copy staged one row, the marker lines included.
            if fs.events + fs.metrics + fs.rejects != nlines:
                raise IngestError(f"{src.name}: internal line count mismatch after sanitizing ({fs.events + fs.metrics + fs.rejects} of {nlines})")
            scan.lines = nlines
            if not _two_phase(det):
                # Marker lines were staged as rejects like any other line; record the rejects
                # Python found for them instead.
                fs.rejects -= _drop_markers(con, src.name)
                _insert_rejects(con, src.name, py_rejects)
                fs.rejects += len(py_rejects)
        fs.lines_read = scan.lines
        if not _two_phase(det):
            return scan.sha256, None

        def finish() -> None:
            _number_lines(con, src.name, first_line)
            # Marker lines were staged as rows like any other line; drop them and record the
            # rejects Python found for them instead.
            fs.events -= _drop_markers(con, src.name)
            _insert_rejects(con, src.name, py_rejects)
            fs.rejects += len(py_rejects)
            staged_rows = fs.events
            fs.events = 0
            if det.format == "jsonl":
                _rescue_timestamps(con, src.name, catalog, run.service)
            fmt = catalog.text_format(det.format) if det.format in catalog.text_names else None
            _finish_lines(con, src.name, fs, multiline=bool(fmt and fmt.multiline), fmt_name=det.format, staged=staged_rows)

        return scan.sha256, finish
    finally:
        for p in cleanup:
            p.unlink(missing_ok=True)


def _number_lines(con: duckdb.DuckDBPyConnection, name: str, first_line: int) -> None:
    """Set ``source_line`` of the file's new rows (the ones still NULL) from their row ids: rows
    were appended in file order, so the first is line ``first_line``. Done once the rows are
    committed, the UPDATE rewrites one column at the next checkpoint; inside the inserting
    transaction DuckDB rewrote the whole rows into the WAL (about 100 bytes a line)."""
    base = con.execute("SELECT min(rowid) FROM events WHERE source_file = ? AND source_line IS NULL", [name]).fetchone()[0]
    if base is not None:
        con.execute(
            f"UPDATE events SET source_line = rowid - {int(base)} + {int(first_line)} WHERE source_file = ? AND source_line IS NULL",
            [name],
        )


def _drop_markers(con: duckdb.DuckDBPyConnection, name: str) -> int:
    tag = q.lit(q.TAG_MARKER)
    n = 0
    for table, col in (("events", "raw_level"), ("rejects", "reason")):
        n += con.execute(f"SELECT count(*) FROM {table} WHERE source_file = ? AND {col} = {tag}", [name]).fetchone()[0]
        con.execute(f"DELETE FROM {table} WHERE source_file = ? AND {col} = {tag}", [name])
    return n


def _load_lines(run: _Run, det: Detection, path: Path, gz: bool, first_line: int, sample: _JsonSample | None) -> None:
    """One INSERT over the whole file (DuckDB reads and parses it in parallel, in bounded
    memory). Events rows land in file order with ``source_line`` NULL: :func:`_number_lines`
    sets it from their row ids once they are committed."""
    con, fs, catalog, name = run.con, run.fs, run.catalog, run.src.name
    compression = "gzip" if gz else "none"
    lines = q.read_lines(str(path), compression)
    poller = _Poller(con, run.progress, run.src.size)
    try:
        if det.kind == "metrics" or det.format == "unknown":
            # Rows go to two tables (or only to rejects): number the lines first.
            con.execute(f"CREATE OR REPLACE TEMP TABLE _raw AS SELECT line FROM {lines}")
            base = con.execute("SELECT min(rowid) FROM _raw").fetchone()[0] or 0
            source = f"(SELECT rowid - {base} + {first_line} AS n, line FROM _raw)"
            if det.format == "unknown":
                fs.rejects += _count(
                    con.execute(
                        f"""INSERT INTO rejects SELECT {q.lit(name)}, n,
                            CASE WHEN line = {q.lit(q.MARKER)} THEN {q.lit(q.TAG_MARKER)} ELSE 'no known format matches this file' END,
                            encode(left(coalesce(line, ''), {q.RAW_LIMIT})), strlen(coalesce(line, '')) FROM {source}"""
                    )
                )
            else:
                ins, rej = q.jsonl_metrics_sql(source, name, catalog.fields, run.service)
                fs.metrics += _count(con.execute(ins))
                fs.rejects += _count(con.execute(rej))
            con.execute("DROP TABLE _raw")
            return
        source = f"(SELECT NULL::BIGINT AS n, line FROM {lines})"
        if det.format == "jsonl":
            assert sample is not None
            sql = q.jsonl_events_sql(source, name, catalog.fields, catalog.levels, run.service, sample.keys, strict=sample.clean)
        elif det.format == "logfmt":
            sql = q.logfmt_events_sql(source, name, catalog.fields, catalog.levels, run.service)
        else:
            fmt = catalog.text_format(det.format)
            ref = _reference_time(run.src)
            sql = q.text_events_sql(source, name, fmt, catalog.levels, run.service, ref.year, ref.isoformat())
        fs.events += _count(con.execute(sql))
    finally:
        poller.stop()


def _reader_problem(exc: duckdb.Error) -> str:
    """Why DuckDB's line reader gave up on a chunk (the sanitizer copes), in our words, or '' for
    other errors. DuckDB reads lines with its CSV reader, so its messages speak of CSV."""
    low = str(exc).lower()
    if "unicode" in low or "utf-8" in low or "utf8" in low:
        return "invalid UTF-8 in a line"
    if "line size" in low or "maximum line" in low:
        return f"a line longer than {q.MAX_LINE_BYTES >> 20} MB"
    if any(k in low for k in ("gzip", "zlib", "decompress")):
        return "damaged gzip data"
    if any(k in low for k in ("csv error", "state machine", "parallel csv reader")):
        return "a line the fast reader could not split"
    return ""


def _rescue_timestamps(con: duckdb.DuckDBPyConnection, name: str, catalog: FormatCatalog, service: str | None) -> None:
    """Give JSON lines that had no timestamp under the sampled aliases a pass with every alias."""
    tag = q.lit(q.TAG_REJECT + "no timestamp")
    n = con.execute(f"SELECT count(*) FROM events WHERE source_file = ? AND ts IS NULL AND raw_level = {tag}", [name]).fetchone()[0]
    if not n:
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _rescue AS SELECT source_line AS n, message AS line FROM events "
        f"WHERE source_file = ? AND ts IS NULL AND raw_level = {tag}",
        [name],
    )
    con.execute(f"DELETE FROM events WHERE source_file = ? AND ts IS NULL AND raw_level = {tag}", [name])
    con.execute(q.jsonl_events_sql("(SELECT n, line FROM _rescue)", name, catalog.fields, catalog.levels, service, None))
    con.execute("DROP TABLE _rescue")


# --------------------------------------------------------------------------------------------
# Formats


def _reference_time(src: Source) -> datetime:
    """The time against which year-less timestamps are placed: the file's mtime, or now."""
    if src.mtime_ns:
        return datetime.fromtimestamp(src.mtime_ns / 1e9, tz=timezone.utc)
    return datetime.now(timezone.utc)


def _count(cur: duckdb.DuckDBPyConnection) -> int:
    row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _finish_lines(con: duckdb.DuckDBPyConnection, name: str, fs: FileSummary, multiline: bool, fmt_name: str, staged: int) -> None:
    """Turn the staged rows of ``name`` into continuations and rejects, count, keep time order."""
    staged_bad = con.execute(
        "SELECT count(*) FROM events WHERE source_file = ? AND ts IS NULL", [name]
    ).fetchone()[0]
    if staged_bad and multiline:
        _attach_continuations(con, name, fs, fmt_name)
    if staged_bad:
        moved = _count(
            con.execute(
                f"""INSERT INTO rejects
                    SELECT source_file, source_line, substr(raw_level, 3), encode(left(message, {q.RAW_LIMIT})), strlen(message)
                    FROM events WHERE source_file = ? AND ts IS NULL""",
                [name],
            )
        )
        con.execute("DELETE FROM events WHERE source_file = ? AND ts IS NULL", [name])
        fs.rejects += moved
    else:
        moved = 0
    fs.events += staged - moved - fs.continuation_lines
    _keep_time_order(con, name)


def _attach_continuations(con: duckdb.DuckDBPyConnection, name: str, fs: FileSummary, fmt_name: str) -> None:
    """Append continuation lines to the record above; those with no record above become rejects."""
    cont = q.lit(q.TAG_CONT)
    start = q.lit(q.TAG_START_REJECT + "%")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _conts AS
        SELECT c.source_line, c.message, o.source_line AS owner, o.good
        FROM (SELECT source_line, message FROM events WHERE source_file = ? AND ts IS NULL AND raw_level = {cont}) c
        ASOF LEFT JOIN (
            SELECT source_line, ts IS NOT NULL AS good FROM events
            WHERE source_file = ? AND (ts IS NOT NULL OR raw_level LIKE {start})
        ) o ON c.source_line > o.source_line""",
        [name, name],
    )
    con.execute(
        """UPDATE events SET message = events.message || chr(10) || a.text
        FROM (SELECT owner, rtrim(string_agg(message, chr(10) ORDER BY source_line), chr(10)) AS text
              FROM _conts WHERE good GROUP BY owner) a
        WHERE events.source_file = ? AND events.source_line = a.owner AND events.ts IS NOT NULL AND a.text <> ''""",
        [name],
    )
    fs.continuation_lines = con.execute("SELECT count(*) FROM _conts WHERE good").fetchone()[0]
    con.execute(
        f"""UPDATE events SET raw_level = {q.lit(q.TAG_REJECT)} || CASE
              WHEN c.owner IS NULL THEN CASE WHEN trim(c.message) = '' THEN 'empty line' ELSE 'does not match format {fmt_name} (and no record above to continue)' END
              ELSE 'continuation of rejected line ' || c.owner END
        FROM _conts c
        WHERE events.source_file = ? AND events.source_line = c.source_line AND events.ts IS NULL AND NOT coalesce(c.good, false)""",
        [name],
    )
    con.execute(
        f"""DELETE FROM events WHERE source_file = ? AND ts IS NULL AND raw_level = {cont}""",
        [name],
    )
    con.execute("DROP TABLE _conts")


def _keep_time_order(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Re-sort a file's events by time when its lines were far out of order, so that the row
    groups' min/max statistics stay narrow and time-window queries skip most of the table."""
    row = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE mn < prev_mx - INTERVAL 5 MINUTE)
        FROM (SELECT mn, max(mx) OVER (ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_mx
              FROM (SELECT source_line // 2048 AS b, min(ts) AS mn, max(ts) AS mx
                    FROM events WHERE source_file = ? GROUP BY b))""",
        [name],
    ).fetchone()
    blocks, late = row
    if not blocks or late <= max(1, blocks // 20):
        return
    con.execute("CREATE OR REPLACE TEMP TABLE _resort AS SELECT * FROM events WHERE source_file = ? ORDER BY ts, source_line", [name])
    con.execute("DELETE FROM events WHERE source_file = ?", [name])
    con.execute("INSERT INTO events SELECT * FROM _resort")
    con.execute("DROP TABLE _resort")


# --------------------------------------------------------------------------------------------
# Record formats read by Python (CSV, JSON arrays) and fed through the JSONL SQL


def _run_records_format(run: _Run, det: Detection, stream: BinaryIO) -> None:
    """Formats read by Python record by record: OTLP/JSON, CSV and JSON arrays."""
    if det.format == "otlp":
        _run_otlp(run, stream)
    elif det.format == "csv":
        _run_records(run, _csv_records(stream), det.kind, csv_name=run.src.name)
    else:
        _run_records(run, _array_records(stream), det.kind)


def _csv_records(stream: BinaryIO) -> Iterator[tuple[int, str | None, str, int]]:
    """``(line, json_or_None, raw_or_reason, raw_len)`` per CSV record, keyed by the header."""
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")  # type: ignore[arg-type]
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield 1, None, f"unreadable CSV header: {exc}", 0
        return
    header = [h.strip() for h in header]
    while True:
        start = reader.line_num + 1
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, None, f"malformed CSV: {exc}", 0
            continue
        joined = ",".join(rec)
        if not rec or (len(rec) == 1 and rec[0].strip() == ""):
            yield start, None, "empty line", 0
            continue
        if len(rec) != len(header):
            yield start, None, f"{len(rec)} fields, header has {len(header)}\x00{joined}", len(joined.encode("utf-8", "surrogateescape"))
            continue
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            yield start, None, "invalid UTF-8", len(joined.encode("utf-8", "surrogateescape"))
            continue
        yield start, orjson.dumps(dict(zip(header, rec))).decode(), "", len(joined)


def _array_records(stream: BinaryIO) -> Iterator[tuple[int, str | None, str, int]]:
    """Records of a JSON document: an array of objects, ``{"entries": [...]}`` or one object."""
    data = stream.read()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        yield 1, None, f"invalid JSON document: {exc}", len(data)
        return
    if isinstance(doc, dict):
        items = doc.get("entries") if isinstance(doc.get("entries"), list) else [doc]
    elif isinstance(doc, list):
        items = doc
    else:
        items = [doc]
    for i, item in enumerate(items, start=1):
        body = orjson.dumps(item).decode()
        if not isinstance(item, dict):
            yield i, None, f"JSON value is not an object\x00{body}", len(body)
        else:
            yield i, body, "", len(body)


def _run_records(run: _Run, records: Iterator[tuple[int, str | None, str, int]], kind: str, csv_name: str | None = None) -> None:
    """Feed ``records`` in batches through the JSONL SQL (events or metrics)."""
    import pyarrow as pa

    con, fs, catalog, service = run.con, run.fs, run.catalog, run.service
    name = run.src.name
    metric_default = None
    if csv_name is not None:
        metric_default = Path(csv_name).name.split(".")[0]
    staged = 0
    read = 0
    py_rejects: list[tuple[int, str, bytes, int]] = []

    def flush(ns: list[int], lines: list[str]) -> int:
        if not ns:
            return 0
        con.register("_ingest_rows", pa.table({"n": pa.array(ns, pa.int64()), "line": pa.array(lines, pa.string())}))
        try:
            source = "(SELECT n, line FROM _ingest_rows)"
            if kind == "metrics":
                ins, rej = q.jsonl_metrics_sql(source, name, catalog.fields, service, metric_default)
                m = _count(con.execute(ins))
                r = _count(con.execute(rej))
                fs.metrics += m
                fs.rejects += r
                return m + r
            return _count(con.execute(q.jsonl_events_sql(source, name, catalog.fields, catalog.levels, service)))
        finally:
            con.unregister("_ingest_rows")

    ns: list[int] = []
    lines: list[str] = []
    for n, body, raw, nbytes in records:
        read += 1
        if body is None:
            reason, _, text = raw.partition("\x00")
            py_rejects.append((n, reason, text.encode("utf-8", "surrogateescape")[: q.RAW_LIMIT], nbytes))
            continue
        if read % BATCH_ROWS == 0 and run.progress is not None and run.reader is not None:
            run.progress(run.reader.bytes_read)
        ns.append(n)
        lines.append(body)
        if len(ns) >= BATCH_ROWS:
            staged += flush(ns, lines)
            ns, lines = [], []
    staged += flush(ns, lines)
    _insert_rejects(con, name, py_rejects)
    fs.rejects += len(py_rejects)
    if kind != "metrics":
        _finish_lines(con, name, fs, multiline=False, fmt_name="records", staged=staged)
    fs.lines_read = read


# --------------------------------------------------------------------------------------------
# OTLP


def _run_otlp(run: _Run, f: BinaryIO) -> None:
    """Read an OTLP/JSON file (one request per line, or one pretty-printed document)."""
    from analyzer.ingest import otlp

    con, src, service, fs = run.con, run.src, run.service, run.fs
    rows = otlp.OtlpRows()
    head = src.head(SNIFF_BYTES)
    pretty = head.lstrip().startswith(b"{") and b"\n" in head.strip() and _first_line_incomplete(head)
    if pretty:
        stream: Iterator[tuple[int, bytes]] = iter([(1, f.read())])
    else:
        stream = ((i, line) for i, (line, _) in enumerate(iter_lines(f), start=1))
    for n, raw, doc in otlp.documents(stream):
        if isinstance(doc, Exception):
            rows.records += 1
            rows.rejects.append((n, f"invalid JSON: {doc}", raw[:2048], len(raw)))
        elif not isinstance(doc, dict):
            rows.records += 1
            rows.rejects.append((n, "JSON value is not an object", raw[:2048], len(raw)))
        else:
            before = rows.records
            otlp.extract(doc, n, raw, rows, src.name, service)
            if rows.records == before:
                rows.records += 1
                rows.rejects.append((n, "no resourceSpans, resourceLogs or resourceMetrics", raw[:2048], len(raw)))
        if len(rows.spans) + len(rows.events) + len(rows.metrics) >= BATCH_ROWS:
            _flush_otlp(con, rows, fs)
    _flush_otlp(con, rows, fs)
    _insert_rejects(con, src.name, rows.rejects)
    fs.rejects += len(rows.rejects)
    fs.lines_read = rows.records
    fs.kind = "traces" if fs.spans and not fs.events else ("events" if fs.events or not fs.metrics else "metrics")


def _first_line_incomplete(head: bytes) -> bool:
    first = head.lstrip().split(b"\n", 1)[0]
    try:
        orjson.loads(first)
        return False
    except orjson.JSONDecodeError:
        return True


def _flush_otlp(con: duckdb.DuckDBPyConnection, rows: Any, fs: FileSummary) -> None:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    if rows.spans:
        cols = list(zip(*rows.spans))
        names = ["trace_id", "span_id", "parent_span_id", "service", "name", "kind", "start_ts", "end_ts", "duration_ms", "status", "status_message", "attrs", "source_file", "source_index"]
        types = [pa.string()] * 6 + [ts, ts, pa.float64(), pa.string(), pa.string(), pa.string(), pa.string(), pa.int64()]
        con.register("_otlp_rows", pa.table({n: pa.array(c, t) for n, c, t in zip(names, cols, types)}))
        con.execute("INSERT INTO spans SELECT * REPLACE (CAST(attrs AS JSON) AS attrs) FROM _otlp_rows")
        con.unregister("_otlp_rows")
        fs.spans += len(rows.spans)
        rows.spans.clear()
    if rows.events:
        cols = list(zip(*rows.events))
        names = ["ts", "level", "raw_level", "service", "host", "message", "trace_id", "span_id", "request_id", "attrs", "source_file", "source_line"]
        types = [ts] + [pa.string()] * 10 + [pa.int64()]
        con.register("_otlp_rows", pa.table({n: pa.array(c, t) for n, c, t in zip(names, cols, types)}))
        con.execute("INSERT INTO events SELECT * REPLACE (CAST(attrs AS JSON) AS attrs) FROM _otlp_rows")
        con.unregister("_otlp_rows")
        fs.events += len(rows.events)
        rows.events.clear()
    if rows.metrics:
        cols = list(zip(*rows.metrics))
        names = ["ts", "service", "metric", "value", "labels", "source_file", "source_line"]
        types = [ts, pa.string(), pa.string(), pa.float64(), pa.string(), pa.string(), pa.int64()]
        con.register("_otlp_rows", pa.table({n: pa.array(c, t) for n, c, t in zip(names, cols, types)}))
        con.execute("INSERT INTO metrics SELECT * REPLACE (CAST(labels AS JSON) AS labels) FROM _otlp_rows")
        con.unregister("_otlp_rows")
        fs.metrics += len(rows.metrics)
        rows.metrics.clear()


@dataclass(frozen=True)
class _Limits:
    """DuckDB memory limits while a file's rows are inserted, and while they are finished."""

    insert: str
    finish: str


def default_memory_limit(threads: int) -> str:
    """A DuckDB memory limit that lets ``threads`` threads write (see ``WRITER_MEMORY_MB``)."""
    return f"{min(MAX_MEMORY_MB, max(MIN_MEMORY_MB, 32 + WRITER_MEMORY_MB * (threads - 1)))}MB"
