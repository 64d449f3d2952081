"""Where lines come from: files, globs, directories, .gz files and stdin; and the byte-level
checks that decide whether DuckDB may read a file directly or it needs the sanitizing slow path."""
from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import stat
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from analyzer.ingest.sql import LINE_DELIM, MARKER, MAX_LINE_BYTES, RAW_LIMIT

STDIN_NAME = "<stdin>"
BLOCK = 1 << 20


class IngestError(Exception):
    """A problem with the user's request (a missing path, a bad option) that stops the run."""


@dataclass
class Source:
    """One input: ``name`` is what rows point back to; ``path`` is what is read."""

    name: str
    path: Path
    gz: bool = False
    size: int = 0
    mtime_ns: int = 0
    temp: bool = False  # path is a spooled copy of stdin, removed after ingest

    def open_raw(self) -> BinaryIO:
        """The bytes as stored."""
        return open(self.path, "rb")

    def open_text(self) -> BinaryIO:
        """The decompressed bytes."""
        if self.gz:
            return gzip.open(self.path, "rb")  # type: ignore[return-value]
        return open(self.path, "rb")

    def head(self, n: int) -> bytes:
        """The first ``n`` decompressed bytes (as many as can be read from a damaged .gz)."""
        with open(self.path, "rb") as raw:
            if self.gz:
                return GzipSalvage(raw).read(n)
            return raw.read(n)


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def _file_source(path: Path) -> Source:
    st = path.stat()
    return Source(str(path.resolve()), path, gz=_is_gzip(path), size=st.st_size, mtime_ns=st.st_mtime_ns)


def _walk(directory: Path) -> Iterator[Path]:
    def onerror(exc: OSError) -> None:
        raise IngestError(f"{exc.filename}: cannot read directory ({exc.strerror})")

    if not os.access(directory, os.R_OK | os.X_OK):
        raise IngestError(f"{directory}: cannot read directory (permission denied)")
    for root, dirs, files in os.walk(directory, onerror=onerror):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            try:
                if stat.S_ISREG(p.stat().st_mode):
                    yield p
            except OSError:
                continue


def expand(paths: list[str | Path], stdin: BinaryIO | None = None, tmp_dir: Path | None = None) -> list[Source]:
    """Turn the command-line arguments into sources, in order, without duplicates.

    A path that does not exist, a glob that matches nothing or an unreadable directory is an
    :class:`IngestError` naming it. ``-`` reads standard input (spooled to a temporary file, so it
    can be hashed, sniffed and read in parallel).
    """
    if not paths:
        raise IngestError("no input paths given")
    out: list[Source] = []
    seen: set[str] = set()

    def add(src: Source) -> None:
        if src.name not in seen:
            seen.add(src.name)
            out.append(src)

    for raw in paths:
        text = str(raw)
        if text == "-":
            add(spool_stdin(stdin or sys.stdin.buffer, tmp_dir))
            continue
        p = Path(text).expanduser()
        if p.exists():
            if p.is_dir():
                files = list(_walk(p))
                if not files:
                    raise IngestError(f"{p}: directory holds no files")
                for f in files:
                    add(_file_source(f))
            elif p.is_file():
                if not os.access(p, os.R_OK):
                    raise IngestError(f"{p}: cannot read file (permission denied)")
                add(_file_source(p))
            else:
                raise IngestError(f"{p}: not a regular file or directory")
            continue
        if glob.has_magic(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            for d in (Path(m) for m in matches if Path(m).is_dir()):
                files.extend(_walk(d))
            if not files:
                raise IngestError(f"{text}: no files match")
            for f in files:
                add(_file_source(f))
            continue
        raise IngestError(f"{p}: no such file or directory")
    return out


def spool_stdin(stream: BinaryIO, tmp_dir: Path | None = None) -> Source:
    """Copy standard input to a temporary file (memory stays bounded) and describe it."""
    fd, name = tempfile.mkstemp(prefix="ggen-stdin-", suffix=".log", dir=tmp_dir)
    size = 0
    with os.fdopen(fd, "wb") as out:
        while True:
            block = stream.read(BLOCK)
            if not block:
                break
            out.write(block)
            size += len(block)
    path = Path(name)
    return Source(STDIN_NAME, path, gz=_is_gzip(path), size=size, mtime_ns=0, temp=True)


class HashingReader(io.RawIOBase):
    """A binary stream wrapper that hashes every byte read through it (the stored bytes)."""

    def __init__(self, raw: BinaryIO, hasher: "hashlib._Hash | None" = None) -> None:
        self.raw = raw
        self.hasher = hasher or hashlib.sha256()
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        block = self.raw.read(n)
        self.hasher.update(block)
        self.bytes_read += len(block)
        return block

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        block = self.read(len(buffer))
        buffer[: len(block)] = block
        return len(block)

    def readable(self) -> bool:
        return True


class GzipSalvage(io.RawIOBase):
    """Decompresses a gzip stream (several members allowed) and keeps everything it can: a
    truncated or damaged file yields the data before the damage, and ``damage`` says what
    happened instead of an exception."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._d = zlib.decompressobj(wbits=31)
        self._buf = b""
        self._eof = False
        self.damage = ""

    def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._eof:
            block = self.raw.read(1 << 16)
            if not block:
                if self._d.unused_data == b"" and not self._d.eof:
                    self.damage = "the file ends in the middle of a gzip stream"
                self._buf += self._d.flush() if not self._d.eof else b""
                self._eof = True
                return
            try:
                self._buf += self._d.decompress(block)
                while self._d.eof and self._d.unused_data:
                    rest = self._d.unused_data
                    self._d = zlib.decompressobj(wbits=31)
                    self._buf += self._d.decompress(rest)
            except zlib.error as exc:
                self.damage = f"damaged gzip data ({exc})"
                self._eof = True
                return

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            self._fill(1 << 62)
            out, self._buf = self._buf, b""
            return out
        self._fill(n)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        block = self.read(len(buffer))
        buffer[: len(block)] = block
        return len(block)

    def readable(self) -> bool:
        return True


@dataclass
class Chunk:
    """A run of whole lines handed to DuckDB: ``data`` ends with a newline, holds ``nlines``
    lines starting at line ``first_line``; lines that cannot be handed over are already replaced
    by the marker and listed in ``rejects`` as ``(line, reason, raw, raw_bytes)``."""

    data: bytes
    first_line: int
    nlines: int
    rejects: list[tuple[int, str, bytes, int]] = field(default_factory=list)
    sanitized: bool = False


def _clean(data: bytes) -> str | None:
    """Why DuckDB's line reader cannot take ``data`` as is, or None when it can."""
    if MARKER.encode() in data:
        return "control bytes \\x01\\x02\\x03"
    ncr = data.count(b"\r")
    if ncr and ncr != data.count(b"\r\n"):
        return "carriage return inside a line"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid UTF-8"
    return None


def sanitize_chunk(chunk: Chunk) -> Chunk:
    """Replace each line DuckDB could not read by the marker (recording a reject); CRLF becomes
    LF and a lone CR inside a line becomes U+240D (a visible ␍)."""
    marker = MARKER.encode()
    out: list[bytes] = []
    rejects = list(chunk.rejects)
    already = {r[0] for r in chunk.rejects}
    lines = chunk.data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, line in enumerate(lines):
        n = chunk.first_line + i
        if line == marker and n in already:
            out.append(line)
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        problem = _line_problem(line)
        if problem:
            rejects.append((n, problem, line[:RAW_LIMIT], len(line)))
            out.append(marker)
            continue
        if b"\r" in line:
            line = line.replace(b"\r", "\u240d".encode())
        out.append(line)
    data = b"\n".join(out) + b"\n" if out else b""
    return Chunk(data, chunk.first_line, len(out), sorted(rejects), sanitized=True)


def iter_chunks(stream: BinaryIO, chunk_bytes: int, first_line: int = 1) -> Iterator[Chunk]:
    """Cut ``stream`` into chunks of whole lines, never holding more than one chunk plus one
    line of at most MAX_LINE_BYTES. Longer lines are skipped as they stream past and become
    marker lines with a reject; chunks with bytes DuckDB would refuse are sanitized here."""
    marker_line = MARKER.encode() + b"\n"
    line_no = first_line
    pending = b""
    skip_head: bytes | None = None
    skip_len = 0
    extra: list[bytes] = []  # marker lines (for skipped overlong lines) due before the next data
    extra_rejects: list[tuple[int, str, bytes, int]] = []

    def emit(body: bytes) -> Chunk:
        nonlocal line_no, extra, extra_rejects
        data = b"".join(extra) + body
        nlines = data.count(b"\n")
        chunk = Chunk(data, line_no, nlines, extra_rejects)
        extra, extra_rejects = [], []
        line_no += nlines
        if _clean(data) is not None:
            chunk = sanitize_chunk(chunk)
        return chunk

    def overlong(head: bytes, length: int) -> None:
        n = line_no + sum(x.count(b"\n") for x in extra)
        extra.append(marker_line)
        extra_rejects.append((n, f"line longer than {MAX_LINE_BYTES} bytes ({length} bytes)", head[:RAW_LIMIT], length))

    while True:
        block = stream.read(chunk_bytes)
        if not block:
            break
        if skip_head is not None:
            nl = block.find(b"\n")
            if nl < 0:
                skip_len += len(block)
                continue
            overlong(skip_head, skip_len + nl)
            skip_head, skip_len = None, 0
            block = block[nl + 1 :]
        data = pending + block if pending else block
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) > MAX_LINE_BYTES:
                skip_head, skip_len, pending = data[:RAW_LIMIT], len(data), b""
            else:
                pending = data
            continue
        body, pending = data[: cut + 1], data[cut + 1 :]
        if len(pending) > MAX_LINE_BYTES:
            skip_head, skip_len, pending = pending[:RAW_LIMIT], len(pending), b""
        yield emit(body)
    if skip_head is not None:
        overlong(skip_head, skip_len)
    if pending or extra:
        yield emit(pending + b"\n" if pending else b"")


def _line_problem(line: bytes) -> str | None:
    if len(line) > MAX_LINE_BYTES:
        return f"line longer than {MAX_LINE_BYTES} bytes ({len(line)} bytes)"
    if MARKER.encode() in line or LINE_DELIM.encode() in line:
        return "binary data (control bytes \\x01\\x02\\x03)"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    return None


def iter_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[bytes, int]]:
    """Yield ``(line, length)`` without the newline, never holding more than ``limit`` bytes of a
    line: a longer line is cut (its full length is still reported)."""
    buf = b""
    over: bytes | None = None  # head of an overlong line being skipped
    over_len = 0
    while True:
        block = stream.read(BLOCK)
        if not block:
            break
        start = 0
        while True:
            nl = block.find(b"\n", start)
            if nl < 0:
                piece = block[start:]
                if over is not None:
                    over_len += len(piece)
                elif len(buf) + len(piece) > limit:
                    over = (buf + piece)[: limit + 1]
                    over_len = len(buf) + len(piece)
                    buf = b""
                else:
                    buf += piece
                break
            piece = block[start:nl]
            if over is not None:
                yield over, over_len + len(piece)
                over, over_len = None, 0
            else:
                line = buf + piece
                buf = b""
                yield line, len(line)
            start = nl + 1
    if over is not None:
        yield over, over_len
    elif buf:
        yield buf, len(buf)
