"""``ggen certify``: the knowledge assessment and certificates (signed ``certificate.issued``
receipts in the data directory's ledger)."""
from __future__ import annotations

import sys
from typing import Any

import click

from console.cli.common import EXIT_FAILED, EXIT_USAGE, data_dir, echo_json, fail, safe_text
from console.cli.remote import Group, json_option, login_name


def _trainee(name: str | None) -> str:
    from engine.training.session import TrainingError, check_trainee

    try:
        return check_trainee(name if name is not None else login_name())
    except TrainingError as exc:
        fail(f"--trainee: {exc}", EXIT_USAGE)


def _config() -> Any:
    from engine.policy.loader import PolicyError
    from engine.training.config import load_training_config

    try:
        return load_training_config()
    except PolicyError as exc:
        fail(str(exc))


def _eligibility(who: str, accept_scripted: bool = False) -> Any:
    from engine.clock import WallClock
    from engine.drill.scenario import load_scenarios
    from engine.policy.loader import PolicyError
    from engine.training.certify import eligibility
    from engine.training.history import TrainingHistory

    try:
        scenarios = load_scenarios()
    except PolicyError as exc:
        fail(str(exc))
    hist = TrainingHistory(data_dir().root)
    for p in hist.read().problems:
        click.echo(f"ggen: {safe_text(p)} (skipped)", err=True)
    return eligibility(hist, who, scenarios, _config(), WallClock().now_ms(), accept_scripted=accept_scripted)


@click.group(cls=Group, invoke_without_command=True)
@click.option("--trainee", default=None, metavar="NAME", help="Issue the certificate to this trainee.")
@click.option("--actor", default=None, metavar="NAME", help="Who issues it (recorded in the receipt). Default: GGEN_ACTOR or your login name.")
@click.option("--accept-scripted", is_flag=True, help="Let headless runs (train run --answers) and scripted quizzes (quiz --answers) count; the certificate records that it does.")
@click.option("--reissue", is_flag=True, help="Issue a new certificate even though one is still valid (it names the one it replaces).")
@json_option
@click.pass_context
def certify(ctx: click.Context, trainee: str | None, actor: str | None, accept_scripted: bool, reissue: bool, as_json: bool) -> None:
    """Certify a trainee: every required scenario and the knowledge assessment passed gives a
    certificate, a signed receipt you can check with `ggen incidents verify --receipt-id ID`.

    Only results a person played count (scenarios in `ggen train start`, the quiz in the console
    or on the terminal); answers files are practice unless --accept-scripted. A trainee already
    certified is told so (exit 0) and gets no second certificate unless --reissue.
    Exits 1 (and lists what is missing) when the trainee is not eligible yet.
    """
    if ctx.invoked_subcommand is not None:
        return
    if trainee is None:
        fail("ggen certify: give --trainee NAME (or a sub-command: status, quiz)", EXIT_USAGE)
    who = _trainee(trainee)
    el = _eligibility(who, accept_scripted)
    from engine.clock import WallClock

    now = WallClock().now_ms()
    current = el.current_certificate(now)
    if current is not None and not reissue:
        if as_json:
            echo_json(dict(current, already_certified=True))
        else:
            click.echo(f"{safe_text(who)} is already certified: receipt {current.get('receipt_id')}, issued {current.get('at')}, valid until {current.get('valid_until')} (no new certificate; --reissue issues another)")
        return
    if not el.eligible:
        if as_json:
            echo_json(el.to_dict())
        else:
            _print_status(el)
        fail(f"{safe_text(who)} is not eligible for a certificate yet: missing {len(el.missing)} item(s)", EXIT_FAILED)
    from engine.receipts import LedgerError
    from engine.training.certify import issue_certificate

    try:
        rec = issue_certificate(data_dir(), el, _config(), now_ms=now, actor=_trainee(actor) if actor else login_name(), reissue=reissue)
    except (OSError, LedgerError) as exc:
        fail(f"cannot write the certificate to {safe_text(data_dir().root)}: {safe_text(getattr(exc, 'strerror', None) or exc)}")
    if as_json:
        echo_json(rec)
        return
    how = " on scripted results (--accept-scripted)" if accept_scripted else ""
    again = f", replacing {rec['reissue_of']}" if rec.get("reissue_of") else ""
    click.echo(f"certified {safe_text(who)}{how}: receipt {rec['receipt_id']} (certificate.issued){again}, valid until {rec['valid_until']}")
    click.echo(f"check it with: ggen incidents verify --receipt-id {rec['receipt_id']}")


def _print_status(el: Any) -> None:
    d = el.to_dict()
    click.echo(f"{safe_text(d['trainee'])}: {'eligible' if d['eligible'] else 'not eligible yet'}")
    for s in d["scenarios"]:
        mark = click.style("✓", fg="green") if s["passed"] else (click.style("✗", fg="red") if s["attempted"] else "·")
        detail = f"{s['score_pct']} % at {s['at']}" if s["score_pct"] is not None else "not attempted"
        click.echo(f"  {mark} scenario {s['scenario']:30} {detail}")
    q = d["quiz"]
    lq = d["last_quiz"]
    if q:
        click.echo(f"  {click.style('✓', fg='green')} knowledge assessment  {q['score_pct']} % at {q['at']}")
    elif lq:
        click.echo(f"  {click.style('✗', fg='red')} knowledge assessment  last attempt {lq['score_pct']} % at {lq['at']}")
    else:
        click.echo("  · knowledge assessment  not attempted (ggen certify quiz)")
    if d["practice_results_not_counted"]:
        click.echo(f"  ({d['practice_results_not_counted']} passing result(s) from answers files are practice and do not count: play them in ggen train start / take the quiz yourself, or --accept-scripted)")
    for c in d["certificates"]:
        click.echo(f"  certificate {c['receipt_id']} issued {c['at']}, valid until {c['valid_until']}")


@certify.command("status")
@click.option("--trainee", default=None, metavar="NAME")
@click.option("--accept-scripted", is_flag=True, help="Count headless runs and scripted quizzes too.")
@json_option
def status(trainee: str | None, accept_scripted: bool, as_json: bool) -> None:
    """What a trainee has passed and what a certificate still needs."""
    el = _eligibility(_trainee(trainee), accept_scripted)
    if as_json:
        echo_json(el.to_dict())
    else:
        _print_status(el)


def record_quiz(result: Any, who: str, *, mode: str) -> dict[str, Any]:
    """Keep a graded attempt in the data directory's training history."""
    from engine.clock import WallClock
    from engine.training.history import TrainingHistory

    body = dict(result.to_dict(), kind="quiz", trainee=who, mode=mode)
    body.pop("questions")
    body["answers"] = [{"id": q.id, "given": q.given, "correct": q.correct} for q in result.questions]
    try:
        return TrainingHistory(data_dir().root).append(body, now_ms=WallClock().now_ms())
    except OSError as exc:
        fail(f"cannot write the training history in {safe_text(data_dir().root)}: {exc.strerror or exc}")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@certify.command("quiz")
@click.option("--trainee", default=None, metavar="NAME", help="Whose attempt it is (default: the file's trainee, else your login name).")
@click.option("--answers", "answers_path", type=click.Path(dir_okay=False), default=None, metavar="FILE", help="Scripted answers (question id = letter or choice text); without it, asks on the terminal.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Which questions, in which order (default: the file's seed, else random; always recorded).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Questions in the attempt (default: training.toml).")
@click.option("--no-record", is_flag=True, help="Do not keep the attempt in the training history.")
@click.option("--console", is_flag=True, help="Take it full screen (the console's assessment screen) instead of line by line.")
@json_option
def quiz(trainee: str | None, answers_path: str | None, seed: int | None, count: int | None, no_record: bool, console: bool, as_json: bool) -> None:
    """The knowledge assessment: thresholds, SLAs, the escalation ladder, breaker states, PIR
    deadlines, scaling arithmetic, failover rules. Randomized per seed; the pass mark is 80 %.

    Exits 0 when passed, 1 when failed.
    """
    import secrets
    from pathlib import Path

    from engine.policy.loader import PolicyError
    from engine.training.quiz import LETTERS, draw, grade, load_bank, load_quiz_answers

    cfg = _config()
    try:
        bank = load_bank()
    except PolicyError as exc:
        fail(str(exc))
    scripted = None
    if answers_path is not None:
        try:
            scripted = load_quiz_answers(Path(answers_path))
        except PolicyError as exc:
            fail(safe_text(str(exc)), EXIT_USAGE)
        known = bank.by_id()
        unknown = [k for k in scripted.answers if k not in known]
        if unknown:
            fail(f"{safe_text(answers_path)}: field answers.{safe_text(unknown[0])}: no such question in the bank", EXIT_USAGE)
    elif not _stdin_is_terminal():
        fail("ggen certify quiz asks on a terminal: give --answers FILE for a scripted attempt (stdin is not a terminal)", EXIT_USAGE)
    who = _trainee(trainee if trainee is not None else (scripted.trainee if scripted else None))
    used_seed = seed if seed is not None else (scripted.seed if scripted and scripted.seed is not None else secrets.randbelow(1_000_000))
    questions = draw(bank, used_seed, count or cfg.quiz.questions)
    if scripted is not None:
        given: dict[str, str | None] = dict(scripted.answers)
    elif console:
        given = {}
    else:
        given = {}
        click.echo(f"Knowledge assessment for {safe_text(who)}: {len(questions)} questions, pass mark {cfg.quiz.pass_pct} % (seed {used_seed})\n")
        for i, q in enumerate(questions, 1):
            click.echo(f"{i}/{len(questions)} [{q.topic}] {safe_text(q.text)}")
            for j, c in enumerate(q.choices):
                click.echo(f"   {LETTERS[j]}) {safe_text(c)}")
            letter = click.prompt("answer", type=click.Choice(list(LETTERS[: len(q.choices)]), case_sensitive=False), show_choices=False)
            given[q.id] = letter
            click.echo("")
    if console and scripted is None:
        from console.tui.screens.training import QuizApp, QuizScreen

        app = QuizApp(QuizScreen(questions, seed=used_seed, pass_pct=cfg.quiz.pass_pct, bank_sha256=bank.sha256))
        app.run()
        if app.result is None:
            fail("knowledge assessment abandoned: nothing recorded")
        result = app.result
    else:
        result = grade(questions, given, seed=used_seed, pass_pct=cfg.quiz.pass_pct, bank_sha256=bank.sha256)
    rec = None if no_record else record_quiz(result, who, mode="scripted" if scripted else ("console" if console else "terminal"))
    if as_json:
        echo_json(dict(result.to_dict(), trainee=who, attempt_id=rec["id"] if rec else None))
    else:
        mark = click.style("PASS", fg="green", bold=True) if result.passed else click.style("FAIL", fg="red", bold=True)
        click.echo(f"{mark} {result.correct}/{result.total} correct: {result.score_pct:g} % (pass mark {result.pass_pct} %, seed {used_seed})")
        for q in result.questions:
            if not q.correct:
                click.echo(f"  ✗ {safe_text(q.text)}\n      you: {safe_text(q.given or '(no answer)')}; right: {safe_text(q.answer)}. {safe_text(q.explain)}")
        if rec:
            click.echo(f"recorded as {rec['id']}")
    sys.exit(0 if result.passed else EXIT_FAILED)
