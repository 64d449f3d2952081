"""The score report printed after a trainee session wraps on words at the terminal's width (never
inside a word), and is not wrapped at all into a pipe."""
from __future__ import annotations

import re

from click.testing import CliRunner

import click

from console.cli import train as train_cli
from engine.drill.scenario import TraineeStep, load_scenarios
from engine.training.session import run_answers

SCENARIOS = load_scenarios()


def a_report():
    sc = SCENARIOS["errors-bad-deploy"]
    steps = [TraineeStep.model_validate(st.model_dump()) for st in sc.training.reference]
    report, _ = run_answers(sc, steps, trainee="bob", seed=1)
    return report


def printed(report, width):
    @click.command()
    def cmd() -> None:
        train_cli.print_report(report, width=width)

    res = CliRunner().invoke(cmd, [], color=False)
    assert res.exit_code == 0, res.output
    return res.output


def words(text: str) -> list[str]:
    return text.split()


def test_report_wraps_on_words_at_the_terminal_width():
    report = a_report()
    full = printed(report, 10_000)
    assert max(len(l) for l in full.splitlines()) > 60  # something to wrap
    narrow = printed(report, 60)
    for line in narrow.splitlines():
        assert len(line) <= 60 or " " not in line.strip(), line
    assert words(narrow) == words(full)  # no word cut in two, none lost


def test_report_into_a_pipe_is_not_wrapped(monkeypatch):
    monkeypatch.setattr(train_cli.sys.stdout, "isatty", lambda: False, raising=False)
    assert train_cli.report_width() is None


def test_wrap_line_keeps_colour_and_indent():
    out = train_cli.wrap_line(" ✓ severity: 10.0/10.0  classified Sev2 within the runbook's guidance points", 30, indent=3, styled=("✓", "\x1b[32m✓\x1b[0m"))
    lines = out.splitlines()
    assert lines[0].startswith(" \x1b[32m✓\x1b[0m severity")
    assert all(l.startswith("   ") for l in lines[1:]) and "runbook's" in out and not re.search(r"\w\n\w", out)
