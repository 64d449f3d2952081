"""The searchable knowledge base: entry files on disk, a tantivy index in the data directory.

The index is a cache of the entry files. Every search first compares the files' sizes and mtimes
with the manifest kept beside the index; changed files are re-read, hashed, validated and replaced
in the index (deleted by path, added again), removed files are deleted. A schema change or an
unreadable index is rebuilt from the files. Broken entries are kept out of the index and reported
on every search until they are fixed, so nothing is dropped silently.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson
import tantivy

from engine.datadir import DataDir
from pydantic import BaseModel, ConfigDict, Field

from engine.policy.loader import PolicyError, StrictModel, read_data_file, validate

from .entry import CAUSES, Entry, EntryError, SEVERITIES, format_mttr, parse_entry, plain_text
from .query import ParsedQuery, QueryBuilder, echo, key_tokens, parse_query, resolve_incident_type, resolve_severity
from .settings import PACKAGED_DIR, TEXT_FIELDS, SearchSettings, load_settings

SCHEMA_VERSION = 6
ENTRY_GLOB = "incident-*.md"
ENV_ENTRY_DIRS = "GGEN_KNOWLEDGE_DIRS"
TEAM_DIR_NAME = "knowledge-base"


def team_entry_dir(data_dir: DataDir) -> Path:
    """Where ``ggen knowledge add`` writes the team's own entries: ``<data dir>/knowledge-base``."""
    return data_dir.root / TEAM_DIR_NAME


class KnowledgeConfig(StrictModel):
    """The ``[knowledge]`` section of ``<data dir>/config.toml``."""

    entry_dirs: list[str] = Field(default_factory=list)
    include_packaged: bool = True


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)


def default_entry_dirs(data_dir: DataDir) -> list[Path]:
    """Where entries are read from, first match wins:

    1. ``$GGEN_KNOWLEDGE_DIRS`` (os.pathsep-separated);
    2. ``[knowledge] entry_dirs`` in ``<data dir>/config.toml`` (relative paths are relative to
       the data dir), after the packaged entries unless ``include_packaged = false``;
    3. the packaged entries plus ``<data dir>/knowledge-base`` (where ``knowledge add`` writes).

    A broken config section raises PolicyError naming the file and the field.
    """
    env = os.environ.get(ENV_ENTRY_DIRS)
    if env:
        return [Path(p).expanduser().resolve() for p in env.split(os.pathsep) if p.strip()]
    cfg_path = data_dir.config_path
    if cfg_path.exists():
        cfg = validate(cfg_path, read_data_file(cfg_path), _ConfigFile).knowledge
        if cfg.entry_dirs:
            dirs = [(data_dir.root / Path(d).expanduser()).resolve() for d in cfg.entry_dirs]
            return ([PACKAGED_DIR] if cfg.include_packaged else []) + dirs
        if not cfg.include_packaged:
            return [team_entry_dir(data_dir)]
    return [PACKAGED_DIR, team_entry_dir(data_dir)]


def build_schema() -> tantivy.Schema:
    """Text fields are stemmed English (stored for snippets); ``words`` is unstemmed for fuzzy
    matching; ``keys`` holds identifiers and numbers whole; facets are raw terms."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    sb.add_text_field("path", stored=True, tokenizer_name="raw")
    for name in TEXT_FIELDS:
        sb.add_text_field(name, stored=True, tokenizer_name="en_stem")
    sb.add_text_field("all", stored=False, tokenizer_name="en_stem")
    sb.add_text_field("words", stored=False, tokenizer_name="default", index_option="freq")
    sb.add_text_field("keys", stored=False, tokenizer_name="whitespace", index_option="freq")
    sb.add_text_field("types", stored=True, tokenizer_name="raw")
    sb.add_text_field("causes", stored=True, tokenizer_name="raw")
    sb.add_text_field("services", stored=True, tokenizer_name="raw")
    sb.add_integer_field("severity", stored=True, indexed=True, fast=True)
    sb.add_integer_field("day", stored=True, indexed=True, fast=True)
    sb.add_bytes_field("meta", stored=True)
    return sb.build()


def day_key(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def entry_fields(entry: Entry) -> dict[str, Any]:
    """The values one entry contributes to the index."""
    m = entry.meta
    facets = " ".join(
        [t.replace("_", " ") for t in m.incident_types]
        + [c.replace("_", " ") for c in m.causes]
        + m.services
        + m.regions
        + m.accounts
        + m.tags
    )
    texts = {
        "title": m.title,
        "symptoms": plain_text(entry.section("Symptoms")),
        "root_cause": m.root_cause + "\n" + plain_text(entry.section("Root Cause")) + "\n" + plain_text(entry.section("Contributing Factors")),
        "resolution": m.solution + "\n" + plain_text(entry.section("Resolution")),
        "prevention": plain_text(entry.section("Prevention")),
        "body": plain_text(entry.section("Timeline")) + "\n" + plain_text(entry.section("Lessons Learned")) + "\n" + facets,
    }
    everything = "\n".join(texts.values())
    keys = key_tokens(everything + " " + entry.entry_id + " " + m.incident_id)
    keys += [t.lower() for t in m.tags] + list(m.incident_types) + list(m.causes)
    keys += [m.incident_id.removeprefix("urn:uuid:")]
    prevention = entry.prevention_items()
    meta = {
        "title": m.title,
        "incident_id": m.incident_id,
        "date": m.date.isoformat(),
        "severity": m.severity,
        "duration_min": m.duration_min,
        "mttr_min": m.mttr_min,
        "mttr_s": m.mttr_s,
        "customers_affected": m.customers_affected,
        "root_cause": m.root_cause,
        "solution": m.solution,
        "prevention": [text for _, text in prevention.get("Short-term", [])],
        "incident_types": list(m.incident_types),
        "causes": list(m.causes),
        "services": list(m.services),
        "regions": list(m.regions),
        "tags": list(m.tags),
        "outcome": m.outcome,
    }
    return {
        "id": entry.entry_id,
        "path": str(entry.path),
        **texts,
        "all": everything,
        "words": everything,
        "keys": " ".join(dict.fromkeys(k for k in keys if k and " " not in k)),
        "types": list(m.incident_types),
        "causes": list(m.causes),
        "services": [s.lower() for s in m.services],
        "severity": int(m.severity[3:]),
        "day": day_key(m.date),
        "meta": orjson.dumps(meta),
    }


def document_from_fields(f: dict[str, Any]) -> tantivy.Document:
    """A tantivy document from :func:`entry_fields` output."""
    doc = tantivy.Document()
    for name in ("id", "path", *TEXT_FIELDS, "all", "words", "keys"):
        doc.add_text(name, f[name])
    for name in ("types", "causes", "services"):
        for v in f[name]:
            doc.add_text(name, v)
    doc.add_integer("severity", f["severity"])
    doc.add_integer("day", f["day"])
    doc.add_bytes("meta", f["meta"])
    return doc


def entry_document(entry: Entry) -> tantivy.Document:
    return document_from_fields(entry_fields(entry))


PARALLEL_MIN_FILES = 1000

Prepared = tuple  # ("ok", path, sha, id, urn, fields) | ("same", path, sha) | ("error", path, sha, field, message)


def prepare_file(job: tuple[str, str | None]) -> Prepared:
    """Read, hash, validate and turn one entry file into index fields (runs in worker processes
    for big rebuilds). ``job`` is (path, sha256 already indexed for it or None)."""
    path, known_sha = job
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return ("error", path, "", None, f"cannot read: {exc.strerror or exc}")
    sha = hashlib.sha256(raw).hexdigest()
    if known_sha is not None and known_sha == sha:
        return ("same", path, sha)
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EntryError(path, None, f"not UTF-8 text (byte {exc.start})") from None
        entry = parse_entry(Path(path), text)
    except EntryError as err:
        return ("error", path, sha, err.field, err.message)
    return ("ok", path, sha, entry.entry_id, entry.meta.incident_id, entry_fields(entry))


def prepare_files(jobs: list[tuple[str, str | None]]) -> list[Prepared]:
    """:func:`prepare_file` for every job, in order; on all cores when there are many (a full
    rebuild of a large knowledge base), in this process otherwise or if workers cannot start."""
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) >= PARALLEL_MIN_FILES and workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                return list(pool.map(prepare_file, jobs, chunksize=max(50, len(jobs) // (workers * 8))))
        except Exception:  # no /dev/shm, fork limits, frozen interpreter: do it here instead
            pass
    return [prepare_file(j) for j in jobs]


@dataclass(frozen=True)
class Snippet:
    """A fragment of one field with the matched words marked by character ranges (never markup)."""

    field: str
    text: str
    highlights: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SearchHit:
    """One ranked entry with what an on-call needs to act on it."""

    entry_id: str
    path: str
    score: float
    title: str
    incident_id: str
    date: str
    severity: str
    incident_types: tuple[str, ...]
    causes: tuple[str, ...]
    services: tuple[str, ...]
    duration_min: int
    mttr_min: int
    customers_affected: str
    root_cause: str
    solution: str
    prevention: tuple[str, ...]
    outcome: str
    tags: tuple[str, ...] = ()
    snippet: Snippet | None = None
    mttr_s: int | None = None

    @property
    def mttr_text(self) -> str:
        """The MTTR as people read it: '40 s', '4 min 30 s', '12 min'."""
        return format_mttr(self.mttr_min, self.mttr_s)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.entry_id,
            "path": self.path,
            "score": round(self.score, 4),
            "title": self.title,
            "incident_id": self.incident_id,
            "date": self.date,
            "severity": self.severity,
            "incident_types": list(self.incident_types),
            "causes": list(self.causes),
            "services": list(self.services),
            "duration_min": self.duration_min,
            "mttr_min": self.mttr_min,
            "mttr_s": self.mttr_s,
            "mttr": self.mttr_text,
            "customers_affected": self.customers_affected,
            "root_cause": self.root_cause,
            "solution": self.solution,
            "prevention": list(self.prevention),
            "outcome": self.outcome,
            "tags": list(self.tags),
            "snippet": None,
        }
        if self.snippet is not None:
            d["snippet"] = {
                "field": self.snippet.field,
                "text": self.snippet.text,
                "highlights": [list(h) for h in self.snippet.highlights],
            }
        return d


@dataclass(frozen=True)
class SearchRequest:
    """What to look for. Text flags are ANDed together; words inside one flag are ORed and ranked."""

    symptoms: str | None = None
    root_cause: str | None = None
    solution: str | None = None
    text: str | None = None
    types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    causes: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    limit: int = 10

    def texts(self) -> list[tuple[str, str]]:
        return [
            (flag, value)
            for flag, value in (
                ("symptoms", self.symptoms),
                ("root_cause", self.root_cause),
                ("solution", self.solution),
                ("text", self.text),
            )
            if value is not None
        ]

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {flag: value for flag, value in self.texts()}
        if self.types:
            d["types"] = list(self.types)
        if self.severities:
            d["severities"] = list(self.severities)
        if self.causes:
            d["causes"] = list(self.causes)
        if self.services:
            d["services"] = list(self.services)
        if self.since:
            d["since"] = self.since.isoformat()
        if self.until:
            d["until"] = self.until.isoformat()
        d["limit"] = self.limit
        return d


@dataclass
class RefreshReport:
    """What a refresh changed in the index."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    rebuilt: bool = False
    errors: list[EntryError] = field(default_factory=list)
    took_ms: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "rebuilt": self.rebuilt,
            "errors": [error_json(e) for e in self.errors],
            "took_ms": round(self.took_ms, 2),
        }


@dataclass
class SearchResult:
    """Ranked hits plus everything the user should be told about the query."""

    request: SearchRequest
    hits: list[SearchHit]
    total: int
    warnings: list[str]
    corrections: dict[str, list[str]]
    took_ms: float
    refresh: RefreshReport | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.request.to_json(),
            "total": self.total,
            "hits": [h.to_json() for h in self.hits],
            "warnings": list(self.warnings),
            "warning": "; ".join(self.warnings) if self.warnings else None,
            "corrections": self.corrections,
            "took_ms": round(self.took_ms, 2),
        }


def error_json(e: PolicyError) -> dict[str, Any]:
    return {"path": e.path, "field": e.field, "message": e.message, "error": str(e)}


class KnowledgeBase:
    """Entries in one or more directories, searchable through an index kept in the data directory."""

    def __init__(
        self,
        data_dir: DataDir | str | os.PathLike[str] | None = None,
        entry_dirs: Sequence[str | os.PathLike[str]] | None = None,
        settings: SearchSettings | None = None,
    ) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir.resolve(data_dir)
        self.entry_dirs = [Path(p).expanduser().resolve() for p in entry_dirs] if entry_dirs else default_entry_dirs(self.data_dir)
        self.settings = settings or load_settings()
        self.schema = build_schema()
        self.index_dir = self.data_dir.knowledge_index_dir
        self._index: tantivy.Index | None = None
        self._memory = False
        self._manifest: dict[str, Any] | None = None
        self._manifest_key: tuple[int, int, int] | None = None
        self.notices: list[str] = []

    # --- files -----------------------------------------------------------------------------

    def scan(self) -> dict[str, os.stat_result]:
        """Entry files in the configured directories (later directories cannot shadow earlier ones)."""
        found: dict[str, os.stat_result] = {}
        for d in self.entry_dirs:
            try:
                with os.scandir(d) as it:
                    names = sorted(
                        (de.name, de.path) for de in it if de.name.startswith("incident-") and de.name.endswith(".md")
                    )
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.notices.append(f"{d}: cannot list entries: {exc.strerror or exc}")
                continue
            for _, path in names:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found[path] = st
        return found

    def entries(self) -> tuple[list[Entry], list[EntryError]]:
        """Parse every entry file: (valid entries, errors), with duplicate ids reported as errors."""
        good: list[Entry] = []
        errors: list[EntryError] = []
        ids: dict[str, str] = {}
        urns: dict[str, str] = {}
        for path in self.scan():
            try:
                e = _read(Path(path))
                _check_unique(e, ids, urns)
            except EntryError as exc:
                errors.append(exc)
                continue
            ids[e.entry_id] = str(e.path)
            urns[e.meta.incident_id] = str(e.path)
            good.append(e)
        return good, errors

    def get(self, ref: str) -> Entry:
        """An entry by id (file stem), incident id (with or without ``urn:uuid:``) or file path."""
        p = Path(ref).expanduser()
        if ref.endswith(".md") and p.is_file():
            return _read(p.resolve())
        want = ref.strip().removesuffix(".md")
        bare = want.lower().removeprefix("urn:uuid:")
        for path in self.scan():
            if Path(path).name[:-3] == want:
                return _read(Path(path))
        for path in self.scan():
            try:
                e = _read(Path(path))
            except EntryError:
                continue
            if e.meta.incident_id.removeprefix("urn:uuid:") == bare:
                return e
        raise KeyError(ref)

    # --- index -----------------------------------------------------------------------------

    def _open(self, rebuild: bool = False) -> tantivy.Index:
        if self._index is not None and not rebuild:
            return self._index
        try:
            self.data_dir.ensure()
            self.index_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.notices.append(f"{self.index_dir}: cannot create the index ({exc.strerror or exc}); searching an in-memory index")
            self._memory = True
            self._index = tantivy.Index(self.schema)
            return self._index
        if rebuild:
            _clear_dir(self.index_dir)
        try:
            self._index = tantivy.Index(self.schema, path=str(self.index_dir), reuse=True)
        except Exception:
            _clear_dir(self.index_dir)
            self._index = tantivy.Index(self.schema, path=str(self.index_dir), reuse=True)
        return self._index

    @property
    def manifest_path(self) -> Path:
        return self.index_dir / "manifest.json"

    def _read_manifest(self) -> dict[str, Any] | None:
        if self._memory:
            return self._manifest
        try:
            st = os.stat(self.manifest_path)
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._manifest is not None and self._manifest_key == key:
            return self._manifest  # unchanged since this process last read or wrote it
        try:
            data = orjson.loads(self.manifest_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION or not isinstance(data.get("files"), dict):
            return None
        self._manifest, self._manifest_key = data, key
        return data

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        self._manifest = manifest
        if self._memory:
            return
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(manifest))
        os.replace(tmp, self.manifest_path)
        st = os.stat(self.manifest_path)
        self._manifest_key = (st.st_mtime_ns, st.st_size, st.st_ino)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        if self._memory:
            yield
            return
        with open(self.index_dir / ".refresh.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def refresh(self, force: bool = False) -> RefreshReport:
        """Bring the index up to date with the entry files; cheap when nothing changed."""
        t0 = time.perf_counter()
        report = RefreshReport()
        files = self.scan()
        self._open()
        manifest = self._read_manifest()
        if not force and manifest is not None and _same_stats(manifest, files) and self._index_ok():
            report.unchanged = len(files)
            report.errors = _manifest_errors(manifest)
            report.took_ms = (time.perf_counter() - t0) * 1000
            return report
        with self._lock():
            manifest = None if force else self._read_manifest()
            index = self._open(rebuild=manifest is None)
            if manifest is None or not self._index_ok():
                if manifest is not None:
                    index = self._open(rebuild=True)
                manifest = {"schema": SCHEMA_VERSION, "files": {}}
                report.rebuilt = True
            self._apply(index, manifest, files, report)
        report.took_ms = (time.perf_counter() - t0) * 1000
        return report

    def _index_ok(self) -> bool:
        if self._memory:
            return self._manifest is not None
        return (self.index_dir / "meta.json").exists()

    def _apply(self, index: tantivy.Index, manifest: dict[str, Any], files: dict[str, os.stat_result], report: RefreshReport) -> None:
        old: dict[str, dict[str, Any]] = manifest["files"]
        new: dict[str, dict[str, Any]] = {}
        to_delete: list[str] = []
        to_add: list[dict[str, Any]] = []
        # ids and incident ids already held by files that stay as they are
        ids: dict[str, str] = {}
        urns: dict[str, str] = {}
        pending: list[tuple[str, os.stat_result]] = []
        for path, st in files.items():
            rec = old.get(path)
            # Broken files are looked at again whenever anything changed: a duplicate id may be gone.
            if rec is not None and "id" in rec and rec["mtime_ns"] == st.st_mtime_ns and rec["size"] == st.st_size:
                new[path] = rec
                ids[rec["id"]] = path
                urns[rec["urn"]] = path
                report.unchanged += 1
            else:
                pending.append((path, st))
        jobs = [(path, old[path].get("sha256") if path in old and "id" in old[path] else None) for path, _ in pending]
        for (path, st), res in zip(pending, prepare_files(jobs)):
            rec = old.get(path)
            if res[0] == "same":
                assert rec is not None
                if rec["id"] not in ids and rec["urn"] not in urns:
                    new[path] = {**rec, "mtime_ns": st.st_mtime_ns, "size": st.st_size}
                    ids[rec["id"]] = path
                    urns[rec["urn"]] = path
                    report.unchanged += 1
                    continue
                res = prepare_file((path, None))
            if res[0] == "ok":
                _, _, sha, entry_id, urn, fields = res
                if entry_id in ids:
                    res = ("error", path, sha, None, f"duplicate entry id {entry_id} (also {ids[entry_id]})")
                elif urn in urns:
                    res = ("error", path, sha, "incident_id", f"{urn} is already used by {urns[urn]}")
            if res[0] == "error":
                _, _, sha, fld, msg = res
                new[path] = {"mtime_ns": st.st_mtime_ns, "size": st.st_size, "sha256": sha, **_err_rec(EntryError(path, fld, msg))}
                if rec is not None and "id" in rec:
                    to_delete.append(path)
                continue
            ids[entry_id] = path
            urns[urn] = path
            new[path] = {"mtime_ns": st.st_mtime_ns, "size": st.st_size, "sha256": sha, "id": entry_id, "urn": urn}
            if rec is not None and "id" in rec:
                to_delete.append(path)
                report.updated.append(entry_id)
            else:
                if rec is not None:
                    to_delete.append(path)  # harmless if it was never indexed
                report.added.append(entry_id)
            to_add.append(fields)
        for path, rec in old.items():
            if path not in files:
                to_delete.append(path)
                if "id" in rec:
                    report.removed.append(rec["id"])
        if to_delete or to_add or report.rebuilt:
            bulk = len(to_add) >= 500
            threads = max(1, min(4, os.cpu_count() or 1)) if bulk else 1
            writer = index.writer(heap_size=(128 if bulk else 32) * 1_000_000, num_threads=threads)
            try:
                for path in to_delete:
                    writer.delete_documents_by_term("path", path)
                for fields in to_add:
                    writer.add_document(document_from_fields(fields))
                writer.commit()
                writer.wait_merging_threads()
            except BaseException:
                with contextlib.suppress(Exception):
                    writer.rollback()
                raise
            index.reload()
        errors = [new[p]["error"] for p in sorted(new) if "error" in new[p]]
        manifest = {"schema": SCHEMA_VERSION, "files": new, "errors": errors}
        self._write_manifest(manifest)
        report.errors = _manifest_errors(manifest)

    # --- search ----------------------------------------------------------------------------

    def searcher(self) -> tantivy.Searcher:
        """A searcher on the latest committed state of the index."""
        index = self._open()
        try:
            index.reload()
            return index.searcher()
        except Exception:
            # Another process rebuilt the index under us (schema change, reindex): open it afresh.
            self._index = None
            index = self._open()
            index.reload()
            return index.searcher()

    def search(self, request: SearchRequest, *, refresh: bool = True, log: bool = True, now_ms: int | None = None) -> SearchResult:
        """Ranked entries for ``request``. Never raises for anything the user typed."""
        t0 = time.perf_counter()
        report = self.refresh() if refresh else None
        warnings: list[str] = list(self.notices)
        if report is not None:
            warnings += [f"{e} (entry skipped)" for e in report.errors]
        searcher = self.searcher()
        builder = QueryBuilder(self.schema, searcher, self.settings)
        musts: list[tantivy.Query] = []
        primary_fields: list[str] = []
        asked_text = False
        for flag, value in request.texts():
            asked_text = True
            parsed: ParsedQuery = parse_query(value, self.settings)
            warnings += list(parsed.warnings)
            boosts = self.settings.fields[flag]  # type: ignore[index]
            for f, _ in sorted(boosts.items(), key=lambda kv: -kv[1]):
                if f not in primary_fields and f not in ("title", "all"):
                    primary_fields.append(f)
            q = builder.build(parsed, boosts)
            if q is None:
                warnings.append(f"--{flag.replace('_', '-')} {echo(value, self.settings.limits.echo_chars)} has no searchable words")
                musts.append(tantivy.Query.empty_query())
            else:
                musts.append(q)
        notes = builder.notes
        n = self.settings.limits.echo_chars
        for raw, fixes in notes.corrections.items():
            warnings.append(f"{echo(raw, n)} is not in any entry; also matched {', '.join(repr(f) for f in fixes)}")
        for raw in notes.fuzzy:
            if raw not in notes.corrections:
                warnings.append(f"{echo(raw, n)} is not in any entry; also tried similar spellings")
        filters = self._filters(request)
        hits: list[SearchHit] = []
        total = 0
        if musts:
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, q) for q in musts] + [(tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0)) for f in filters]
            )
            hits, total = self.run_query(searcher, query, request.limit, primary_fields)
        else:
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, tantivy.Query.all_query())] + [(tantivy.Occur.Must, f) for f in filters])
            res = searcher.search(query, limit=max(1, request.limit), count=True, order_by_field="day")
            total = res.count or 0
            for _, addr in res.hits:
                hits.append(self._hit(searcher.doc(addr), 0.0, None))
        if asked_text:
            # Equal scores: the newer incident first, then by id, so output is stable.
            hits.sort(key=lambda h: h.entry_id)
            hits.sort(key=lambda h: h.date, reverse=True)
            hits.sort(key=lambda h: -round(h.score, 5))
        result = SearchResult(
            request=request,
            hits=hits,
            total=total,
            warnings=warnings,
            corrections=dict(notes.corrections),
            took_ms=(time.perf_counter() - t0) * 1000,
            refresh=report,
        )
        if log and asked_text:
            from .stats import log_query

            log_query(self.data_dir, result, now_ms=now_ms)
        return result

    def run_query(self, searcher: tantivy.Searcher, query: tantivy.Query, limit: int, fields: list[str]) -> tuple[list[SearchHit], int]:
        """Execute a built query: hits with snippets from ``fields`` (first that highlights), and the count."""
        res = searcher.search(query, limit=max(1, limit), count=True)
        gens: dict[str, tantivy.SnippetGenerator] = {}
        hits = []
        for score, addr in res.hits:
            doc = searcher.doc(addr)
            hits.append(self._hit(doc, score, self._snippet(searcher, query, doc, fields, gens)))
        return hits, res.count or 0

    def _filters(self, r: SearchRequest) -> list[tantivy.Query]:
        s = self.schema
        out: list[tantivy.Query] = []
        if r.types:
            out.append(tantivy.Query.term_set_query(s, "types", list(r.types)))
        if r.severities:
            out.append(tantivy.Query.term_set_query(s, "severity", [int(v[3:]) for v in r.severities]))
        if r.causes:
            out.append(tantivy.Query.term_set_query(s, "causes", list(r.causes)))
        if r.services:
            out.append(tantivy.Query.term_set_query(s, "services", [v.lower() for v in r.services]))
        if r.since or r.until:
            out.append(
                tantivy.Query.range_query(
                    s,
                    "day",
                    tantivy.FieldType.Integer,
                    day_key(r.since) if r.since else 0,
                    day_key(r.until) if r.until else 99_991_231,
                )
            )
        return out

    def _snippet(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        doc: tantivy.Document,
        fields: list[str],
        gens: dict[str, tantivy.SnippetGenerator],
    ) -> Snippet | None:
        for f in fields + [x for x in ("symptoms", "root_cause", "resolution", "prevention", "body") if x not in fields]:
            gen = gens.get(f)
            if gen is None:
                gen = tantivy.SnippetGenerator.create(searcher, query, self.schema, f)
                gen.set_max_num_chars(self.settings.snippet_max_chars)
                gens[f] = gen
            sn = gen.snippet_from_doc(doc)
            ranges = sn.highlighted()
            if not ranges:
                continue
            frag = sn.fragment()
            raw = frag.encode("utf-8")
            marks = []
            for r in ranges:
                a = len(raw[: r.start].decode("utf-8", "ignore"))
                b = len(raw[: r.end].decode("utf-8", "ignore"))
                if b > a:
                    marks.append((a, b))
            return Snippet(f, frag.replace("\n", " "), tuple(marks))
        text = (doc.get_first("symptoms") or "").replace("\n", " ")
        if text:
            cut = text[: self.settings.snippet_max_chars]
            return Snippet("symptoms", cut, ())
        return None

    def _hit(self, doc: tantivy.Document, score: float, snippet: Snippet | None) -> SearchHit:
        meta = orjson.loads(doc.get_first("meta"))
        return SearchHit(
            entry_id=doc.get_first("id"),
            path=doc.get_first("path"),
            score=float(score),
            title=meta["title"],
            incident_id=meta["incident_id"],
            date=meta["date"],
            severity=meta["severity"],
            incident_types=tuple(meta["incident_types"]),
            causes=tuple(meta["causes"]),
            services=tuple(meta["services"]),
            duration_min=meta["duration_min"],
            mttr_min=meta["mttr_min"],
            mttr_s=meta.get("mttr_s"),
            customers_affected=meta["customers_affected"],
            root_cause=meta["root_cause"],
            solution=meta["solution"],
            prevention=tuple(meta["prevention"]),
            outcome=meta["outcome"],
            tags=tuple(meta["tags"]),
            snippet=snippet,
        )


def make_request(
    *,
    symptoms: str | None = None,
    root_cause: str | None = None,
    solution: str | None = None,
    text: str | None = None,
    types: Sequence[str] = (),
    severities: Sequence[str] = (),
    causes: Sequence[str] = (),
    services: Sequence[str] = (),
    since: date | None = None,
    until: date | None = None,
    limit: int = 10,
    settings: SearchSettings | None = None,
) -> SearchRequest:
    """A SearchRequest with filter values checked and made canonical (ValueError says which)."""
    st = settings or load_settings()
    tys = []
    for t in types:
        c = resolve_incident_type(t, st)
        if c is None:
            raise ValueError(f"unknown incident type {t!r} (one of: {', '.join(sorted(set(st.type_aliases.values())))})")
        tys.append(c)
    sevs = []
    for s in severities:
        c = resolve_severity(s)
        if c is None:
            raise ValueError(f"unknown severity {s!r} (one of: {', '.join(SEVERITIES)})")
        sevs.append(c)
    cs = []
    for c in causes:
        n = c.strip().lower().replace("-", "_").replace(" ", "_")
        if n not in CAUSES:
            raise ValueError(f"unknown root cause {c!r} (one of: {', '.join(CAUSES)})")
        cs.append(n)
    if since and until and since > until:
        raise ValueError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    if limit < 1 or limit > 1000:
        raise ValueError(f"limit must be between 1 and 1000, not {limit}")
    return SearchRequest(
        symptoms=symptoms,
        root_cause=root_cause,
        solution=solution,
        text=text,
        types=tuple(dict.fromkeys(tys)),
        severities=tuple(dict.fromkeys(sevs)),
        causes=tuple(dict.fromkeys(cs)),
        services=tuple(services),
        since=since,
        until=until,
        limit=limit,
    )


def _read(path: Path) -> Entry:
    from .entry import read_entry

    return read_entry(path)


def _check_unique(e: Entry, ids: dict[str, str], urns: dict[str, str]) -> None:
    if e.entry_id in ids:
        raise EntryError(e.path, None, f"duplicate entry id {e.entry_id} (also {ids[e.entry_id]})")
    if e.meta.incident_id in urns:
        raise EntryError(e.path, "incident_id", f"{e.meta.incident_id} is already used by {urns[e.meta.incident_id]}")


def _err_rec(err: PolicyError) -> dict[str, Any]:
    return {"error": {"path": err.path, "field": err.field, "message": err.message}}


def _manifest_errors(manifest: dict[str, Any]) -> list[EntryError]:
    """The broken entries recorded at the last refresh, in path order (kept apart from the file
    records so that a search does not walk every record to find them)."""
    return [EntryError(e["path"], e["field"], e["message"]) for e in manifest.get("errors", [])]


def _same_stats(manifest: dict[str, Any], files: dict[str, os.stat_result]) -> bool:
    known = manifest["files"]
    if len(known) != len(files):
        return False
    for path, st in files.items():
        rec = known.get(path)
        if rec is None or rec["mtime_ns"] != st.st_mtime_ns or rec["size"] != st.st_size:
            return False
    return True


def _clear_dir(d: Path) -> None:
    for child in d.iterdir():
        if child.name == ".refresh.lock":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()


def temporary_kb(entry_dirs: Sequence[Path], settings: SearchSettings | None = None) -> KnowledgeBase:
    """A knowledge base over ``entry_dirs`` with its index in a fresh temporary data directory."""
    root = Path(tempfile.mkdtemp(prefix="ggen-kb-"))
    return KnowledgeBase(DataDir(root), entry_dirs=list(entry_dirs), settings=settings)
