"""Trainee mode in the console: the banner, the trainee's keys, every action recorded through the
trainee session, the score report screen, and the knowledge assessment screen."""
import asyncio

import pytest

from console_support import screen_text, settle

from console.tui.actions import MANUAL_ACTIONS
from console.tui.screens.training import ChoiceScreen, MessageScreen, QuizApp, QuizScreen, ScoreScreen, TraineeScreen
from console.tui.training import TrainingConsoleSession, training_app
from engine.drill.scenario import load_scenario
from engine.training.quiz import draw, load_bank


def run(coro):
    asyncio.run(coro)


def app_for(name, trainee="ann"):
    return training_app(load_scenario(name), trainee=trainee, start_clock=False)


async def open_paged(pilot, ms):
    app = pilot.app
    await pilot.pause()
    assert isinstance(app.screen, MessageScreen)  # the briefing first
    assert "You are the primary on-call for app" in screen_text(app)
    await pilot.press("enter")
    app.session.advance(ms)
    await settle(pilot)


def test_trainee_handles_a_bad_deploy_from_the_keyboard_and_gets_a_passing_score():
    app = app_for("errors-bad-deploy")

    async def go():
        async with app.run_test(size=(130, 40)) as pilot:
            await open_paged(pilot, 70_000)
            text = screen_text(app)
            assert "TRAINING  Bad deploy on app  trainee ann  T+01:10 / 20:00" in text
            assert "automation off (training)" in text and "automation on" not in text
            assert "error_rate_spike@app: not acked · severity ? · runbook ?" in text
            assert "injected bad_deploy" not in text  # the root cause is not announced
            await pilot.press("a")
            await settle(pilot)
            await pilot.press("v")
            await pilot.pause()
            assert isinstance(app.screen, ChoiceScreen)
            await pilot.press("down", "enter")  # Sev2
            await settle(pilot)
            await pilot.press("r", "down", "enter")  # error_rate_spike (runbooks in name order)
            await settle(pilot)
            assert "error_rate_spike@app: acked · severity Sev2 · runbook error_rate_spike" in screen_text(app)
            order = [a.name for a in MANUAL_ACTIONS]
            await pilot.press("m", *["down"] * order.index("rollback_deploy"), "enter")
            await pilot.pause()
            await pilot.press("y")
            await settle(pilot)
            app.session.advance(400_000)
            await settle(pilot)
            await pilot.press("f", "y")
            await pilot.pause()
            assert isinstance(app.screen, ScoreScreen)
            text = screen_text(app)
            assert "PASS" in text and "score 100 % (pass mark 75 %)" in text
            assert "Reference path" in text and "Your actions" in text
        rep = app.outcome.report
        assert rep is not None and rep.passed
        assert [t["do"] for t in rep.timeline] == ["acknowledge", "classify", "runbook", "action"]
        assert rep.timeline[-1]["args"]["action"] == "rollback_deploy" and rep.timeline[-1]["args"]["target"] == "app"

    run(go())


def test_wrong_choices_in_the_console_fail_with_reasons_and_chaos_is_refused():
    app = app_for("errors-bad-deploy", trainee="bob")

    async def go():
        async with app.run_test(size=(130, 40)) as pilot:
            await open_paged(pilot, 70_000)
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, TraineeScreen)  # no chaos menu
            assert len(app.session.engine.fleet.faults) == 1  # only the scenario's own fault
            await pilot.press("v", "enter")  # Sev1: wrong
            await settle(pilot)
            await pilot.press("h", "y")  # a hint costs 5 points
            await pilot.pause()
            assert isinstance(app.screen, MessageScreen) and "Hint (5 points)" in screen_text(app)
            await pilot.press("escape")
            await pilot.press("f", "y")
            await pilot.pause()
            text = screen_text(app)
            assert "FAIL" in text and "wrong severity: classified Sev1, expected Sev2" in text
            assert "never acknowledged (Sev2 SLA 900 s)" in text
            assert "hints used 1 (-5 points)" in text

    run(go())


def test_kill_switch_in_the_automation_scenario_stops_the_failover():
    app = app_for("region-gray-standby", trainee="cat")

    async def go():
        async with app.run_test(size=(130, 40)) as pilot:
            await pilot.pause()
            await pilot.press("enter")
            app.session.advance(60_000)
            await settle(pilot)
            assert "automation ON" in screen_text(app)
            await pilot.press("k", "y")
            await settle(pilot)
            app.session.advance(230_000)
            await settle(pilot)
            inc = app.session.trainee.first("region_failover")
            assert inc is not None and not any(e.kind == "mitigation.applied" for e in inc.events)
            await pilot.press("a")
            await settle(pilot)
            await pilot.press("v", "enter", "r", *["down"] * 4, "enter")
            await settle(pilot)
            await pilot.press("f", "y")
            await pilot.pause()
            assert "automation stopped (kill switch at +60 s) before it could apply failover_region" in screen_text(app)
        assert app.outcome.report.passed, app.outcome.report.failures

    run(go())


def test_scenario_end_brings_the_score_screen_by_itself():
    app = app_for("errors-bad-config", trainee="dan")

    async def go():
        async with app.run_test(size=(120, 34)) as pilot:
            await pilot.pause()
            await pilot.press("enter")
            app.session.advance(10_000_000)
            app.main.update_banner()
            await pilot.pause()
            assert isinstance(app.screen, ScoreScreen)
            assert "never acknowledged" in screen_text(app)

    run(go())


def test_quiz_screen_from_the_score_report():
    app = app_for("errors-bad-config", trainee="eve")

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("enter", "f", "y")
            await pilot.pause()
            assert isinstance(app.screen, ScoreScreen)
            await pilot.press("Q")
            await pilot.pause()
            quiz = app.screen
            assert isinstance(quiz, QuizScreen)
            assert "question 1 of 25" in screen_text(app)
            for q in quiz.questions:
                await pilot.press("abcd"[q.answer_index])
            await pilot.pause()
            assert "PASS" in screen_text(app) and "25/25 correct: 100 %" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, ScoreScreen)
        assert app.outcome.quiz is not None and app.outcome.quiz.passed

    run(go())


def test_standalone_quiz_app_records_wrong_answers():
    bank = load_bank()
    questions = draw(bank, 4, 5)
    screen = QuizScreen(questions, seed=4, pass_pct=80, bank_sha256=bank.sha256)
    app = QuizApp(screen)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            for q in questions[:3]:
                await pilot.press("abcd"[q.answer_index])
            for q in questions[3:]:
                await pilot.press("abcd"[(q.answer_index + 1) % len(q.choices)])
            await pilot.pause()
            text = screen_text(app)
            assert "FAIL" in text and "3/5 correct: 60 %" in text
            assert "you: " in text and "right: " in text and text.count("✗ ") == 2
            await pilot.press("a")
        assert app.result is not None and app.result.correct == 3 and not app.result.passed

    run(go())


def test_clock_thread_runs_and_stops():
    import time

    s = TrainingConsoleSession(__import__("engine.training.session", fromlist=["TraineeSession"]).TraineeSession(load_scenario("errors-bad-config"), trainee="fay"), speed=300.0)
    t0 = s.trainee.offset_s
    s.start()
    deadline = time.monotonic() + 5
    while s.trainee.offset_s < t0 + 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    s.pause()
    time.sleep(0.15)
    at = s.trainee.offset_s
    time.sleep(0.2)
    assert at >= t0 + 30 and s.trainee.offset_s == at  # paused: time stands still
    s.stop()
    assert s.crash_text is None


@pytest.mark.system
def test_train_start_in_tmux_records_the_result(tmp_path):
    """The real command in a terminal: the briefing, the page, keys, the score, the history."""
    import os
    import shutil
    import subprocess
    import sys
    import uuid
    from functools import partial
    from pathlib import Path

    import tmux_support as tmux

    assert shutil.which("tmux"), "tmux is required (CI installs it)"
    root = Path(__file__).resolve().parents[1]
    name = f"ggen-train-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data"
    ggen_bin = Path(sys.executable).parent / "ggen"
    cmd = f"cd {root} && {ggen_bin} --data-dir {data} train start errors-schema-change --trainee tia --speed 20; echo TRAIN-EXIT=$?; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "130", "-y", "45", cmd], check=True, env=dict(os.environ, TERM="xterm-256color"))
    subprocess.run(["tmux", "resize-window", "-t", name, "-x", "130", "-y", "45"], capture_output=True)  # another server's default size

    pane, keys, until = (partial(f, name) for f in (tmux.pane, tmux.keys, tmux.until))

    try:
        until("Training: Incompatible API schema behind a flag", 20)
        keys("Enter")
        until("error_rate_spike@app: not acked", 30)
        keys("a")
        until("error_rate_spike@app: acked", 10)
        keys("f")
        until("Finish the scenario?", 10)
        keys("y")
        until("FAIL  errors-schema-change", 10)
        keys("q")
        text = until("TRAIN-EXIT=1", 15)
        assert "never classified (expected Sev2)" in text or "recorded as" in text
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    hist = (data / "training" / "history.jsonl").read_text().splitlines()
    assert len(hist) == 1 and '"scenario":"errors-schema-change"' in hist[0] and '"mode":"console"' in hist[0]
