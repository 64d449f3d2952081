"""``ggen knowledge``: search past incidents, read and list entries, add entries from PIRs, metrics.

Heavy imports (tantivy, the analyzer) happen inside the commands so ``ggen --help`` stays fast.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from console.cli.common import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REFUSED, data_dir, echo_json, fail, safe_text

if TYPE_CHECKING:
    from analyzer.knowledge import KnowledgeBase, SearchHit, SearchResult


class DayParam(click.ParamType):
    """A calendar day: ``YYYY-MM-DD``, ``today``, or a duration ago (``30d``, ``12w``, ``24h``)."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value).strip()
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
        from engine.clock import WallClock, parse_time_ref

        try:
            if text.lower() == "today":
                ms = WallClock().now_ms()
            else:
                ms = parse_time_ref(text, WallClock().now_ms())
        except ValueError:
            self.fail(f"{text!r} is not a date (use YYYY-MM-DD, today, or a duration such as 30d)", param, ctx)
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()


DAY = DayParam()


def _split(values: tuple[str, ...]) -> list[str]:
    """Repeated options and comma-separated lists are the same thing: --type a,b == --type a --type b."""
    out: list[str] = []
    for v in values:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def _kb(ctx: click.Context) -> "KnowledgeBase":
    from analyzer.knowledge import KnowledgeBase
    from engine.policy.loader import PolicyError

    dirs = (ctx.find_object(dict) or {}).get("knowledge_entry_dirs") or None
    try:
        return KnowledgeBase(data_dir(ctx), entry_dirs=dirs)
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)


def _console(err: bool = False):  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=err, highlight=False, markup=False, emoji=False, soft_wrap=True)


def _warn(messages: list[str]) -> None:
    for m in messages:
        click.echo(f"ggen: warning: {safe_text(m)}", err=True)


@click.group()
@click.option(
    "--entries",
    "entry_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Entry directory to use instead of the defaults (repeatable). Default: $GGEN_KNOWLEDGE_DIRS, "
    "else the packaged runbooks/knowledge-base plus <data dir>/knowledge-base.",
)
@click.pass_context
def knowledge(ctx: click.Context, entry_dirs: tuple[Path, ...]) -> None:
    """Search past incidents, read case files, add entries from PIRs, and see KB metrics."""
    obj = ctx.ensure_object(dict)
    obj["knowledge_entry_dirs"] = [str(p) for p in entry_dirs] or None


def _filter_options(f):  # type: ignore[no-untyped-def]
    f = click.option("--until", type=DAY, help="Only incidents on or before this day (YYYY-MM-DD).")(f)
    f = click.option("--since", type=DAY, help="Only incidents on or after this day (YYYY-MM-DD, or 90d).")(f)
    f = click.option("--service", "services", multiple=True, metavar="NAME", help="Only entries involving this service.")(f)
    f = click.option("--cause", "causes", multiple=True, metavar="CAUSE", help="Only entries with this root cause (e.g. bad_deploy).")(f)
    f = click.option("--severity", "severities", multiple=True, metavar="SEV", help="Sev1..Sev4 (repeatable or comma-separated).")(f)
    f = click.option("--type", "types", multiple=True, metavar="TYPE", help="Incident type, e.g. latency_spike or latency (repeatable).")(f)
    return f


@knowledge.command()
@click.argument("query", required=False)
@click.option("--symptoms", "--symptom", "symptoms", metavar="TEXT", help="What you see: alerts, metrics, errors (weighs symptoms most).")
@click.option("--root-cause", "root_cause", metavar="TEXT", help="Suspected cause (weighs the root-cause text most).")
@click.option("--solution", metavar="TEXT", help="A fix or mitigation (weighs resolution and prevention).")
@click.option("--text", metavar="TEXT", help="Anywhere in the entry.")
@_filter_options
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="Most results to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search(
    ctx: click.Context,
    query: str | None,
    symptoms: str | None,
    root_cause: str | None,
    solution: str | None,
    text: str | None,
    types: tuple[str, ...],
    severities: tuple[str, ...],
    causes: tuple[str, ...],
    services: tuple[str, ...],
    since: date | None,
    until: date | None,
    limit: int,
    as_json: bool,
) -> None:
    """Rank past incidents by relevance. QUERY is the same as --text.

    Plain words always work. Also: "exact phrase", +required, -excluded, AND, OR, NOT, ( ),
    and type:, sev:, service:, cause:, tag:, id: terms. Typos are matched fuzzily.

    \b
    Examples:
      ggen knowledge search --symptoms "latency spike p99"
      ggen knowledge search --symptoms "queue depth 3847 not draining" --type queue
      ggen knowledge search --root-cause "missing index" --since 2025-01-01
      ggen knowledge search "custom.governor/queue_depth" --severity Sev1,Sev2
    """
    from analyzer.knowledge import make_request

    if query is not None:
        text = f"{text} {query}" if text else query
    kb = _kb(ctx)
    try:
        req = make_request(
            symptoms=symptoms,
            root_cause=root_cause,
            solution=solution,
            text=text,
            types=_split(types),
            severities=_split(severities),
            causes=_split(causes),
            services=_split(services),
            since=since,
            until=until,
            limit=limit,
            settings=kb.settings,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    result = kb.search(req)
    if as_json:
        echo_json(result.to_json())
        return
    _warn(result.warnings)
    _print_result(result)


def _print_result(result: "SearchResult") -> None:
    from rich.text import Text

    con = _console()
    asked = bool(result.request.texts())
    if not result.hits:
        con.print(Text("No entries match." + (" The query was recorded as a knowledge gap (ggen knowledge stats)." if asked else "")))
        return
    shown = len(result.hits)
    con.print(Text(f"{shown} of {result.total} matching entries ({result.took_ms:.0f} ms)", style="dim"))
    for n, hit in enumerate(result.hits, start=1):
        con.print(Text(""))
        con.print(_hit_text(n, hit, asked))


def _hit_text(n: int, hit: "SearchHit", scored: bool) -> Any:
    from rich.text import Text

    t = Text()
    t.append(f"{n:>2}. ", style="bold")
    t.append(safe_text(hit.title), style="bold")
    if scored:
        t.append(f"   score {hit.score:.2f}", style="dim")
    t.append("\n    ")
    t.append(hit.entry_id, style="cyan")
    t.append(f"  {hit.severity}  {hit.date}  MTTR {hit.mttr_text}  {hit.outcome}  customers {safe_text(hit.customers_affected)}")
    t.append("\n    types: " + ", ".join(hit.incident_types) + "   causes: " + ", ".join(hit.causes), style="dim")
    if hit.snippet is not None and hit.snippet.text:
        t.append(f"\n    {hit.snippet.field.replace('_', ' ')}: ", style="dim")
        t.append(_snippet_text(hit.snippet.text, hit.snippet.highlights))
    t.append("\n    root cause: ", style="dim")
    t.append(safe_text(hit.root_cause))
    t.append("\n    solution:   ", style="dim")
    t.append(safe_text(hit.solution))
    if hit.prevention:
        t.append("\n    prevention: ", style="dim")
        t.append(safe_text("; ".join(hit.prevention)))
    return t


def _snippet_text(fragment: str, highlights: tuple[tuple[int, int], ...]) -> Any:
    """The snippet as rich Text with the matched words styled by range (never via markup)."""
    from rich.text import Text

    out = Text()
    pos = 0
    for a, b in sorted(highlights):
        if a < pos:
            continue
        out.append(safe_text(fragment[pos:a]))
        out.append(safe_text(fragment[a:b]), style="bold yellow")
        pos = b
    out.append(safe_text(fragment[pos:]))
    return out


@knowledge.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one entry: REF is its id (file name without .md), its incident id, or a file path."""
    from analyzer.knowledge import EntryError
    from analyzer.knowledge.entry import format_mttr

    kb = _kb(ctx)
    try:
        entry = kb.get(ref)
    except KeyError:
        fail(f"no knowledge-base entry {safe_text(ref)!r} (try: ggen knowledge list)", EXIT_NOT_FOUND)
    except EntryError as exc:
        fail(safe_text(str(exc)), EXIT_FAILED)
    if as_json:
        echo_json(
            {
                "id": entry.entry_id,
                "path": str(entry.path),
                "meta": entry.meta.model_dump(mode="json"),
                "sections": entry.sections,
                "sha256": entry.sha256,
            }
        )
        return
    from rich.text import Text

    m = entry.meta
    con = _console()
    head = Text()
    head.append(safe_text(m.title), style="bold")
    head.append(f"\n{entry.entry_id}   {m.incident_id}\n", style="cyan")
    rows = [
        ("Date", m.date.isoformat()),
        ("Severity", m.severity),
        ("Duration", f"{m.duration_min} min (MTTR {format_mttr(m.mttr_min, m.mttr_s)})"),
        ("Customers affected", m.customers_affected),
        ("Incident types", ", ".join(m.incident_types)),
        ("Root causes", ", ".join(m.causes)),
        ("Services", ", ".join(m.services)),
        ("Regions", ", ".join(m.regions) or "-"),
        ("Accounts", ", ".join(m.accounts) or "-"),
        ("Outcome", m.outcome + (" (KB-assisted)" if m.kb_assisted else "")),
        ("Root cause", m.root_cause),
        ("Solution", m.solution),
    ]
    for k, v in rows:
        head.append(f"{k + ':':<20}", style="dim")
        head.append(safe_text(v) + "\n")
    if m.mitigations:
        head.append("Tried:\n", style="dim")
        for mit in m.mitigations:
            head.append(f"  - {mit.pattern}: {mit.outcome}" + (f" ({safe_text(mit.note)})" if mit.note else "") + "\n")
    if m.related_incidents:
        head.append(f"{'Related:':<20}", style="dim")
        head.append(", ".join(m.related_incidents) + "\n")
    links = {k: v for k, v in m.links.model_dump().items() if v}
    for k, v in links.items():
        head.append(f"{('Link ' + k + ':'):<20}", style="dim")
        head.append(safe_text(v) + "\n")
    con.print(head)
    for name, body in entry.sections.items():
        con.print(Text(f"## {name}", style="bold"))
        con.print(Text(safe_text(body) + "\n"))


@knowledge.command(name="list")
@_filter_options
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_entries(
    ctx: click.Context,
    types: tuple[str, ...],
    severities: tuple[str, ...],
    causes: tuple[str, ...],
    services: tuple[str, ...],
    since: date | None,
    until: date | None,
    limit: int,
    as_json: bool,
) -> None:
    """List entries, newest first, optionally filtered."""
    from analyzer.knowledge import make_request

    kb = _kb(ctx)
    try:
        req = make_request(
            types=_split(types),
            severities=_split(severities),
            causes=_split(causes),
            services=_split(services),
            since=since,
            until=until,
            limit=limit,
            settings=kb.settings,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    result = kb.search(req, log=False)
    if as_json:
        echo_json(result.to_json())
        return
    _warn(result.warnings)
    from rich.text import Text

    con = _console()
    width = max((len(h.entry_id) for h in result.hits), default=10)
    for h in result.hits:
        line = Text(f"{h.date}  {h.severity}  ")
        line.append(f"{h.entry_id:<{width}}", style="cyan")
        line.append(f"  {h.mttr_text:>9}  ")
        line.append(safe_text(h.title))
        con.print(line)
    con.print(Text(f"{len(result.hits)} of {result.total} entries", style="dim"))


@knowledge.command()
@click.option("--from-pir", "pir_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="A finished PIR (Markdown with front matter).")
@click.option("--allow-draft", is_flag=True, help="Accept a PIR whose status is still DRAFT.")
@click.option("--cause", "causes", multiple=True, metavar="CAUSE", help="Root cause(s) of the entry; inferred from the PIR when omitted.")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None, help="Directory to write the entry to. Default: <data dir>/knowledge-base.")
@click.option("--force", is_flag=True, help="Replace an existing entry for the same incident.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def add(ctx: click.Context, pir_file: Path, allow_draft: bool, causes: tuple[str, ...], dest: Path | None, force: bool, as_json: bool) -> None:
    """Turn a finished post-incident review into a knowledge-base entry."""
    from analyzer.knowledge import CAUSES, EntryError, PirError, PirRefused, add_from_pir, read_pir, team_entry_dir
    from analyzer.knowledge.pir import suggest_related

    for c in _split(causes):
        if c.strip().lower().replace("-", "_").replace(" ", "_") not in CAUSES:
            raise click.UsageError(f"unknown root cause {c!r} for --cause (one of: {', '.join(CAUSES)})")
    if not pir_file.exists():
        fail(f"{safe_text(str(pir_file))}: no such PIR file (ggen pir list shows the PIRs in the data dir)", EXIT_NOT_FOUND)
    kb = _kb(ctx)
    target_dir = dest or team_entry_dir(kb.data_dir)
    try:
        doc = read_pir(pir_file)
    except PirError as exc:
        fail(safe_text(str(exc)), EXIT_FAILED)
    if doc.meta.status == "DRAFT" and not allow_draft:
        fail(
            f"{safe_text(str(pir_file))}: the PIR is still a DRAFT; finish its sign-off (status FINAL or APPROVED) "
            "or pass --allow-draft",
            EXIT_REFUSED,
        )
    try:
        existing = kb.get(doc.meta.incident_id)
    except (KeyError, EntryError):
        existing = None
    if existing is not None and (not force or existing.path.parent.resolve() != target_dir.resolve()):
        fail(
            f"{existing.path}: an entry for {doc.meta.incident_id} already exists"
            + ("; pass --force to replace it" if existing.path.parent.resolve() == target_dir.resolve() else ""),
            EXIT_REFUSED,
        )
    related: list[str] = []
    try:
        related = suggest_related(doc, kb, _split(causes))
    except Exception as exc:  # suggestions are a bonus; the entry must still be written
        _warn([f"could not look up related incidents: {exc}"])
    try:
        path = add_from_pir(pir_file, target_dir, allow_draft=allow_draft, causes=_split(causes), related=related, force=force, settings=kb.settings)
    except PirRefused as exc:
        fail(safe_text(str(exc)), EXIT_REFUSED)
    except PirError as exc:
        fail(safe_text(str(exc)), EXIT_FAILED)
    except OSError as exc:
        fail(f"{target_dir}: cannot write the entry: {exc.strerror or exc}", EXIT_FAILED)
    if existing is not None and existing.path.resolve() != path.resolve():
        existing.path.unlink()  # --force: the new entry replaces the old file of the same incident
    report = None
    if target_dir.resolve() in [Path(d).resolve() for d in kb.entry_dirs]:
        report = kb.refresh()
    if as_json:
        echo_json({"path": str(path), "id": path.name[:-3], "related_incidents": related, "indexed": report is not None})
        return
    click.echo(f"wrote {path}")
    if related:
        click.echo("related incidents: " + ", ".join(related))
    if report is None:
        click.echo(f"note: {target_dir} is not one of the knowledge-base directories, so the entry is not searchable yet", err=True)


@knowledge.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Knowledge-base metrics: queries and gaps, symptom coverage, entries, solution effectiveness."""
    from analyzer.knowledge import compute_stats

    kb = _kb(ctx)
    s = compute_stats(kb)
    if as_json:
        echo_json(s.to_json())
        return
    from rich.table import Table
    from rich.text import Text

    con = _console()
    _warn(s.invalid + s.log_problems)
    target = "ok" if s.entries >= s.min_entries else f"below target {s.min_entries}"
    con.print(Text(f"Entries: {s.entries} ({target})", style="bold"))
    con.print(Text("  by type: " + ", ".join(f"{k} {v}" for k, v in s.by_type.items())))
    con.print(Text("  by severity: " + ", ".join(f"{k} {v}" for k, v in s.by_severity.items())))
    if s.causes_without_entry:
        con.print(Text("  root causes with no entry: " + ", ".join(s.causes_without_entry)))
    con.print(Text(f"  outcomes: resolved {s.outcomes['resolved']}, escalated {s.outcomes['escalated']}; "
                   f"KB-assisted {s.kb_assisted_pct}% (MTTR {s.mttr_kb_assisted_min} vs {s.mttr_not_assisted_min} min)"))
    con.print(Text(f"  repeats (same type within {s.repeat_window_days} d): {s.repeat_rate_pct}%"))
    con.print(Text(""))
    con.print(Text("Queries", style="bold"))
    con.print(Text(f"  total {s.queries_total}, last {s.query_window_days} d {s.queries_window}; zero-result {s.zero_result_total} "
                   f"({s.zero_result_rate_pct}%); syntax fallbacks {s.fallback_queries}"))
    for q, n in s.gaps:
        con.print(Text(f"  gap x{n}: {safe_text(q)}"))
    con.print(Text(""))
    verdict = "meets" if s.coverage_pct >= s.coverage_target_pct else "below"
    con.print(Text(f"Symptom coverage: {s.coverage_pct}% ({verdict} target {s.coverage_target_pct:g}%)", style="bold"))
    for t, c in s.coverage.items():
        con.print(Text(f"  {t}: {c['covered']}/{c['probes']} ({c['pct']}%)"))
        for miss in c["missing"]:
            con.print(Text(f"    not covered: {miss}", style="dim"))
    con.print(Text(""))
    table = Table(title="Solution patterns", box=None, title_justify="left", title_style="bold")
    for col in ("pattern", "tried", "worked", "partial", "failed", "effective", "median MTTR"):
        table.add_column(col, justify="left" if col == "pattern" else "right")
    for p in s.patterns:
        j = p.to_json()
        mt = j["median_mttr_min_when_worked"]
        table.add_row(p.pattern, str(p.tried), str(p.worked), str(p.partial), str(p.failed), f"{p.effectiveness_pct}%", "-" if mt is None else f"{mt:g} min")
    con.print(table)
    con.print(Text("MTTR by type: " + ", ".join(f"{t} {v['median_min']:g} min (n={v['entries']})" for t, v in s.mttr_by_type.items())))


@knowledge.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate every entry (front matter, sections, related ids); exit 1 if any is invalid."""
    kb = _kb(ctx)
    entries, errors = kb.entries()
    ids = {e.entry_id for e in entries}
    problems = [str(e) for e in errors]
    for e in entries:
        for ref in e.meta.related_incidents:
            if ref not in ids:
                problems.append(f"{e.path}: field related_incidents: no entry {ref}")
    if as_json:
        echo_json({"entries": len(entries), "problems": problems, "ok": not problems, "dirs": [str(d) for d in kb.entry_dirs]})
    else:
        for p in problems:
            click.echo(f"ggen: {safe_text(p)}", err=True)
        click.echo(f"{len(entries)} valid entries, {len(problems)} problem(s)")
    if problems:
        ctx.exit(EXIT_FAILED)


@knowledge.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def reindex(ctx: click.Context, as_json: bool) -> None:
    """Rebuild the search index from the entry files (searches refresh it automatically)."""
    kb = _kb(ctx)
    report = kb.refresh(force=True)
    if as_json:
        echo_json(report.to_json())
        return
    _warn([str(e) for e in report.errors])
    click.echo(f"indexed {len(report.added) + len(report.updated)} entries in {report.took_ms:.0f} ms ({kb.index_dir})")
