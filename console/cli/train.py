"""``ggen train``: training scenarios, headless runs from an answers file, the console's trainee
mode, and each trainee's history."""
from __future__ import annotations

import sys
from typing import Any

import click

from console.cli.common import EXIT_FAILED, EXIT_NO_ENGINE, EXIT_USAGE, data_dir, echo_json, fail, safe_text
from console.cli.remote import Group, json_option, login_name


@click.group(cls=Group)
def train() -> None:
    """Training scenarios: list them, run one from an answers file or in the console, see history."""


def _scenarios() -> dict[str, Any]:
    from engine.drill.scenario import load_scenarios
    from engine.policy.loader import PolicyError

    try:
        return {n: s for n, s in load_scenarios().items() if s.training is not None}
    except PolicyError as exc:
        fail(str(exc))


def _scenario(name: str) -> Any:
    found = _scenarios()
    if name not in found:
        fail(f"unknown training scenario {safe_text(name)!r} (see `ggen train list`)", EXIT_USAGE)
    return found[name]


def _trainee(name: str | None) -> str:
    from engine.training.session import TrainingError, check_trainee

    try:
        return check_trainee(name if name is not None else login_name())
    except TrainingError as exc:
        fail(f"--trainee: {exc}", EXIT_USAGE)


def _expects(sc: Any) -> str:
    t = sc.training
    parts = []
    if t.stop_automation_before:
        parts.append("stop automation")
    if any(r.escalate for r in t.incidents):
        parts.append("escalate")
    if any(r.resolve for r in t.incidents):
        parts.append("fix")
    return "+".join(parts)


@train.command("list")
@json_option
def list_(as_json: bool) -> None:
    """The training scenarios: incidents, what the trainee must do, whether certification needs them."""
    rows = []
    for name, sc in sorted(_scenarios().items()):
        t = sc.training
        rows.append(
            {
                "name": name,
                "title": sc.scenario.title,
                "incidents": [r.type for r in t.incidents],
                "expects": _expects(sc),
                "required": t.certification,
                "automation": t.automation,
                "hints": len(t.hints),
                "pass_pct": t.pass_pct,
            }
        )
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'scenario':30} {'required':8} {'expects':24} {'incidents':48} title")
    for r in rows:
        click.echo(f"{r['name']:30} {'yes' if r['required'] else 'no':8} {r['expects']:24} {', '.join(r['incidents']):48} {r['title']}")
    click.echo(f"\n{sum(r['required'] for r in rows)} of {len(rows)} scenarios are required for certification (ggen certify status --trainee NAME)")


@train.command("show")
@click.argument("scenario")
@click.option("--reference", is_flag=True, help="Print the reference path as an answers file (the answer key: for instructors).")
@json_option
def show(scenario: str, reference: bool, as_json: bool) -> None:
    """A scenario's briefing and rubric (with --reference, its reference answers file)."""
    sc = _scenario(scenario)
    t = sc.training
    if reference:
        steps = [st.model_dump(exclude_defaults=True) for st in t.reference]
        if as_json:
            echo_json({"scenario": sc.name, "steps": steps})
        else:
            click.echo(answers_toml(sc.name, steps))
        return
    info = {
        "name": sc.name,
        "title": sc.scenario.title,
        "briefing": t.briefing,
        "required": t.certification,
        "automation": t.automation,
        "incidents": len(t.incidents),
        "weights": t.weights.model_dump(),
        "pass_pct": t.pass_pct,
        "hints": len(t.hints),
        "hint_costs": [h.cost for h in t.hints],
        "run_s": sc.scenario.run_s,
    }
    if as_json:
        echo_json(info)
        return
    click.echo(f"{sc.name}: {sc.scenario.title}")
    click.echo(f"  {t.briefing}")
    click.echo(f"  automation: {'ON (the runbooks act; you may need to stop them)' if t.automation else 'off (you are the automation)'}")
    click.echo(f"  pages: {len(t.incidents)} incident(s); pass mark {t.pass_pct} %; {len(t.hints)} hints ({', '.join(str(h.cost) for h in t.hints) or '-'} points each)")
    w = t.weights
    click.echo(f"  weights: acknowledge {w.acknowledge}, severity {w.severity}, runbook {w.runbook}, MTTR {w.mttr}, escalation {w.escalation}, actions {w.actions}, safety {w.safety}" + (f", automation {w.automation}" if t.stop_automation_before else ""))


def answers_toml(name: str, steps: list[dict[str, Any]]) -> str:
    """Steps as an answers file (TOML), one inline table per step."""
    import json

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return f"{v:g}" if isinstance(v, float) else str(v)
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return json.dumps(str(v), ensure_ascii=False)

    lines = [f"# Reference path of {name}: ggen train run {name} --answers FILE", f"scenario = {val(name)}", "", "steps = ["]
    for st in steps:
        lines.append("    { " + ", ".join(f"{k} = {val(v)}" for k, v in st.items()) + " },")
    lines.append("]")
    return "\n".join(lines)


@train.command("run")
@click.argument("scenario")
@click.option("--answers", "answers_path", required=True, type=click.Path(dir_okay=False), metavar="FILE", help="The trainee's actions at virtual times (.toml or .json; see README).")
@click.option("--trainee", default=None, metavar="NAME", help="Whose result it is (default: the file's trainee, else your login name).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of the simulated fleet (default: the file's, else 1).")
@click.option("--no-record", is_flag=True, help="Do not keep the result in the training history.")
@json_option
def run(scenario: str, answers_path: str, trainee: str | None, seed: int | None, no_record: bool, as_json: bool) -> None:
    """Play a scripted trainee headless on the virtual clock and print the score report.

    Exits 0 when the scenario is passed, 1 when it is failed.
    """
    from pathlib import Path

    from engine.policy.loader import PolicyError, file_sha256
    from engine.training.session import load_answers, run_answers

    sc = _scenario(scenario)
    try:
        answers = load_answers(Path(answers_path))
    except PolicyError as exc:
        fail(safe_text(str(exc)), EXIT_USAGE)
    if answers.scenario is not None and answers.scenario != sc.name:
        fail(f"{safe_text(answers_path)}: field scenario: the file is for {safe_text(answers.scenario)!r}, not {sc.name!r}", EXIT_USAGE)
    who = _trainee(trainee if trainee is not None else answers.trainee)
    used_seed = seed if seed is not None else (answers.seed if answers.seed is not None else 1)
    report, _ = run_answers(sc, answers.steps, trainee=who, seed=used_seed)
    rec = None
    if not no_record:
        rec = _record(report, mode="headless", answers_sha256=file_sha256(Path(answers_path)))
    if as_json:
        echo_json(dict(report.to_dict(), result_id=rec["id"] if rec else None))
    else:
        print_report(report)
        if rec:
            click.echo(f"\nrecorded as {rec['id']} in {safe_text(data_dir().root)}/training/history.jsonl")
    sys.exit(0 if report.passed else EXIT_FAILED)


def _record(report: Any, *, mode: str, answers_sha256: str | None = None) -> dict[str, Any]:
    from engine.clock import WallClock
    from engine.training.certify import scenario_sha256
    from engine.training.history import TrainingHistory, scenario_record

    try:
        return TrainingHistory(data_dir().root).append(scenario_record(report, mode=mode, scenario_sha256=scenario_sha256(report.scenario), answers_sha256=answers_sha256), now_ms=WallClock().now_ms())
    except OSError as exc:
        fail(f"cannot write the training history in {data_dir().root}: {exc.strerror or exc}")


def report_width() -> int | None:
    """Columns to wrap the score report to: the terminal's width when stdout is a terminal,
    None (no wrapping) when it is a pipe or a file."""
    import shutil

    if not sys.stdout.isatty():
        return None
    cols = shutil.get_terminal_size((0, 0)).columns
    return cols if cols >= 20 else None


def wrap_line(text: str, width: int | None, *, indent: int = 0, styled: tuple[str, str] | None = None) -> str:
    """One report line wrapped on words (never inside a word) to ``width`` columns, continuation
    lines indented by ``indent``; ``styled`` (plain, coloured) puts the colour back on the first
    occurrence of ``plain`` after wrapping (colour codes take no columns)."""
    import textwrap

    if width is not None and len(text) > width:
        text = "\n".join(textwrap.wrap(text, width, subsequent_indent=" " * indent, break_long_words=False, break_on_hyphens=False, drop_whitespace=True) or [text])
    if styled is not None:
        text = text.replace(styled[0], styled[1], 1)
    return text


def print_report(report: Any, width: int | None = None) -> None:
    """The score report as text: what was right, what was wrong, the reference path. Lines
    wrap on words at ``width`` (default: the terminal's width; no wrapping into a pipe)."""
    width = report_width() if width is None else width

    def say(text: str = "", indent: int = 0, styled: tuple[str, str] | None = None) -> None:
        click.echo(wrap_line(text, width, indent=indent, styled=styled))

    verdict = "PASS" if report.passed else "FAIL"
    say(f"{verdict} {report.scenario}: {safe_text(report.title)} (trainee {safe_text(report.trainee)}, seed {report.seed})", 5, (verdict, click.style(verdict, fg="green" if report.passed else "red", bold=True)))
    say(f"score {report.score_pct:g} % (pass mark {report.pass_pct} %)" + (f"; hints used {report.hints_used} (-{report.hint_penalty} points)" if report.hints_used else ""), 6)
    say()
    for c in report.criteria:
        sym = "✓" if c.ok else "✗"
        on = f" [{c.incident}]" if c.incident else ""
        say(f" {sym} {c.label}{on}: {c.earned:.1f}/{c.weight:.1f}  {safe_text(c.detail)}", 3, (sym, click.style(sym, fg="green" if c.ok else "red")))
    if report.failures:
        say("\nfailed because:")
        for f in report.failures:
            say(f"  - {safe_text(f)}", 4)
    say("\nyour actions:")
    if not report.timeline:
        say("  (none)")
    for t in report.timeline:
        flag = "" if t["ok"] else " [did not work]"
        unsafe = f" [UNSAFE: {safe_text(t['unsafe'])}]" if t["unsafe"] else ""
        on = f" {t['incident']}" if t["incident"] else ""
        say(f"  +{t['offset_s']:.0f} s {t['do']}{on}: {safe_text(t['detail'])}{flag}{unsafe}", 4)
    for u in report.unapplied:
        say(f"  not applied: {safe_text(u)}", 4)
    say("\nreference path:")
    for line in report.reference:
        say(f"  {safe_text(line)}", 4)
    if report.debrief:
        say(f"\ndebrief: {safe_text(report.debrief)}", 2)


@train.command("history")
@click.option("--trainee", required=True, metavar="NAME")
@json_option
def history(trainee: str, as_json: bool) -> None:
    """A trainee's scenario results, quiz attempts and certificates, oldest first."""
    from engine.training.history import TrainingHistory

    who = _trainee(trainee)
    read = TrainingHistory(data_dir().root).read()
    for p in read.problems:
        click.echo(f"ggen: {safe_text(p)} (skipped)", err=True)
    recs = [r for r in read.records if r["trainee"] == who]
    if as_json:
        echo_json(recs)
        return
    if not recs:
        click.echo(f"no training history for {safe_text(who)} in {safe_text(data_dir().root)}")
        return
    for r in recs:
        if r["kind"] == "scenario":
            ok = "pass" if r.get("passed") else "FAIL"
            why = f"  ({safe_text('; '.join(r.get('failures') or []))})" if not r.get("passed") else ""
            click.echo(f"{r['at']}  scenario {safe_text(r.get('scenario'))}: {ok} {r.get('score_pct')} % [{r.get('mode')}]{why}")
        elif r["kind"] == "quiz":
            ok = "pass" if r.get("passed") else "FAIL"
            click.echo(f"{r['at']}  quiz: {ok} {r.get('score_pct')} % ({r.get('correct')}/{r.get('total')}, seed {r.get('seed')})")
        else:
            click.echo(f"{r['at']}  certificate {r.get('receipt_id')} valid until {r.get('valid_until')}")


@train.command("start")
@click.argument("scenario")
@click.option("--trainee", default=None, metavar="NAME", help="Whose result it is (default: your login name).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--no-record", is_flag=True, help="Do not keep the result in the training history.")
def start(scenario: str, trainee: str | None, seed: int, speed: float, no_record: bool) -> None:
    """Open the console in trainee mode on a scenario (keys for every action; ? for help)."""
    sc = _scenario(scenario)
    who = _trainee(trainee)
    try:
        from console.tui.training import run_trainee_console
    except ImportError as exc:  # the console is not installed
        fail(f"the console is not available: {exc}", EXIT_NO_ENGINE)
    outcome = run_trainee_console(sc, trainee=who, seed=seed, speed=speed)
    if outcome.quiz is not None and not no_record:
        from console.cli.certify import record_quiz

        q = record_quiz(outcome.quiz, who, mode="console")
        click.echo(f"knowledge assessment: {'PASS' if outcome.quiz.passed else 'FAIL'} {outcome.quiz.score_pct:g} %, recorded as {q['id']}")
    report = outcome.report
    if report is None:
        click.echo("training ended before the score (nothing recorded)")
        return
    rec = None if no_record else _record(report, mode="console")
    print_report(report)
    if rec:
        click.echo(f"\nrecorded as {rec['id']} in {safe_text(data_dir().root)}/training/history.jsonl")
    sys.exit(0 if report.passed else EXIT_FAILED)
