"""`ggen pir ...`: post-incident reviews drafted from receipts and timelines, linted, listed."""
from __future__ import annotations

from pathlib import Path

import click

from console.cli.common import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE, data_dir, echo_json, fail, safe_text


@click.group("pir")
def pir() -> None:
    """Post-incident reviews: draft from evidence, lint for anti-patterns, list with due dates."""


@pir.command("create")
@click.option("--incident-id", required=True, metavar="ID", help="Incident (or receipt) id, or 8+ leading hex digits.")
@click.option("--title", required=True, help="Title of the review.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here instead of the data directory's pirs/ folder.")
@click.option("--db", "db", type=click.Path(path_type=Path), default=None, help="Analyzer database (default: analyzer.duckdb in the data directory).")
@click.option("--force", is_flag=True, help="Replace an existing draft file.")
@click.option("--no-knowledge", is_flag=True, help="Do not consult the knowledge base for action items.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def create(incident_id: str, title: str, output: Path | None, db: Path | None, force: bool, no_knowledge: bool, as_json: bool) -> None:
    """Write a PIR draft with the ten template sections, pre-filled from the incident's receipts
    and its reconstructed timeline; every fact cites a receipt or a source line."""
    from analyzer.pir import create_pir, write_draft
    from analyzer.timeline import TimelineBadInput, TimelineError, TimelineNotFound
    from console.cli.timeline import open_history
    from engine.clock import WallClock, iso_utc

    if not title.strip():
        fail("--title is empty", EXIT_USAGE)
    dd = data_dir()
    ledger, anchors = open_history(need_ledger=True)
    try:
        draft, tl = create_pir(db or dd.analyzer_db_path, ledger, incident_id, title.strip(), now_ms=WallClock().now_ms(), anchors=anchors, data_dir=dd, knowledge=not no_knowledge)
    except TimelineNotFound as exc:
        fail(safe_text(str(exc)), EXIT_NOT_FOUND)
    except TimelineBadInput as exc:
        fail(safe_text(str(exc)), EXIT_USAGE)
    except TimelineError as exc:
        fail(safe_text(str(exc)), EXIT_FAILED)
    finally:
        ledger.close()
    path = output or dd.pir_dir / draft.default_name()
    try:
        if output is None:
            dd.ensure()
        write_draft(draft, path, force=force)
    except FileExistsError as exc:
        fail(safe_text(str(exc)), EXIT_REFUSED)
    except OSError as exc:
        fail(f"{path}: cannot write the draft ({exc.strerror or exc})", EXIT_FAILED)
    if as_json:
        echo_json(
            {
                "path": str(path),
                "incident_id": draft.incident_id,
                "severity": draft.severity,
                "status": "DRAFT",
                "due_at": None if draft.due_ms is None else iso_utc(draft.due_ms),
                "receipts_cited": [r.to_dict() for r in draft.cited],
                "action_items": len(draft.actions),
                "notes": tl.notes,
            }
        )
        return
    click.echo(f"wrote {path}")
    unverified = [r for r in draft.cited if not r.verified]
    click.echo(f"  {len(draft.cited)} receipts cited, {len(draft.cited) - len(unverified)} verified" + (f"; NOT verified: {', '.join(r.receipt_id for r in unverified)}" if unverified else ""))
    if draft.due_ms is not None:
        click.echo(f"  due {iso_utc(draft.due_ms)} ({draft.severity})")
    for n in tl.notes:
        click.echo(f"  note: {safe_text(n)}")
    click.echo(f"  next: edit it, then `ggen pir lint {path}`")


@pir.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ignore", "ignore", multiple=True, metavar="RULE", help="Skip a rule (repeatable): blame, whys, no-positives, vague-action, action-owner-date, claim-without-data, placeholder, structure.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def lint(files: tuple[Path, ...], ignore: tuple[str, ...], as_json: bool) -> None:
    """Check PIRs for the template's anti-patterns: blame, fewer than five whys, no positives,
    vague actions, actions without owner or date, claims without data, unfinished placeholders.
    Prints FILE:LINE: RULE: MESSAGE per finding and exits 1 when there is any."""
    from analyzer.pir import lint_pir
    from analyzer.pir.lint import RULES

    unknown = [r for r in ignore if r not in RULES]
    if unknown:
        fail(f"--ignore {unknown[0]!r}: unknown rule (one of {', '.join(RULES)})", EXIT_USAGE)
    findings = []
    for f in files:
        try:
            findings += [x for x in lint_pir(f) if x.rule not in ignore]
        except FileNotFoundError:
            fail(f"{f}: no such file", EXIT_NOT_FOUND)
        except UnicodeDecodeError as exc:
            fail(f"{f}: not UTF-8 text (byte {exc.start})", EXIT_FAILED)
        except OSError as exc:
            fail(f"{f}: cannot read ({exc.strerror or exc})", EXIT_FAILED)
    if as_json:
        echo_json({"findings": [x.to_dict() for x in findings], "files": [str(f) for f in files]})
    else:
        for x in findings:
            click.echo(safe_text(str(x)))
        if not findings:
            click.echo(f"{len(files)} file(s): no findings")
    if findings:
        raise SystemExit(EXIT_FAILED)


@pir.command("list")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None, help="Directory of PIRs (default: pirs/ in the data directory).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(directory: Path | None, as_json: bool) -> None:
    """List PIR drafts with their status (DRAFT / FINAL / APPROVED), due date and whether they
    are overdue (Sev1 4 h, Sev2 24 h, Sev3 48 h after resolution)."""
    from analyzer.pir import list_pirs
    from engine.clock import WallClock, iso_utc
    from engine.policy.bundle import load_policy
    from engine.policy.loader import PolicyError

    try:
        policy = load_policy()
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)
    folder = directory or data_dir().pir_dir
    rows = list_pirs(folder, policy, WallClock().now_ms())
    if as_json:
        echo_json([r.to_dict() for r in rows])
        return
    if not rows:
        click.echo(f"no PIRs in {folder}")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(rows)} PIR(s) in {folder}", title_justify="left", header_style="bold")
    for col in ("file", "incident", "sev", "status", "resolved", "due", "state", "title"):
        table.add_column(col, no_wrap=col in ("file", "incident", "resolved", "due"))
    for r in rows:
        table.add_row(
            Text(Path(r.path).name),
            Text((r.incident_id or "-").removeprefix("urn:uuid:")[:13]),
            Text(r.severity or "-"),
            Text(r.status or "-"),
            Text(iso_utc(r.resolved_ms)[:16] + "Z" if r.resolved_ms is not None else "-"),
            Text(iso_utc(r.due_ms)[:16] + "Z" if r.due_ms is not None else "-"),
            Text(r.due_state, style="bold red" if r.overdue else ""),
            Text(safe_text(r.error or r.title or "-")),
        )
    Console(highlight=False, soft_wrap=False, width=160).print(table)
