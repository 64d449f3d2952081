"""Trainee mode screens: the main screen with a training banner and the trainee's keys (classify,
runbook, hint, finish), the score report, and the knowledge assessment.

:class:`TraineeScreen` is the console's main screen (every panel and key of it) plus a banner with
the scenario, the timer and the trainee's decisions so far. Keys added: ``v`` classify the
severity, ``r`` choose the runbook, ``h`` a hint (costs points), ``b`` the briefing again, ``f``
finish and see the score. ``c`` (chaos) is refused: the scenario brings its own faults.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from console.tui.app import ConsoleApp
from console.tui.messages import ViewRefreshed
from console.tui.screens.main import MainScreen
from console.tui.text import literal, short_id
from console.tui.widgets.bars import StatusBar

SEVERITIES = ("Sev1", "Sev2", "Sev3", "Sev4")
CONSOLE_CSS = str(Path(__file__).resolve().parent.parent / "console.tcss")
BANNER_S = 0.5


def _mmss(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


class TrainingBanner(Static):
    """Scenario, trainee, the scenario clock, hints used, and the trainee's decisions so far."""

    DEFAULT_CSS = """
    TrainingBanner { height: 2; background: $boost; text-wrap: nowrap; text-overflow: ellipsis; }
    """


class TrainingStatusBar(StatusBar):
    """The status bar, saying so when automation is off because this is training."""

    def __init__(self, automation: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.automation = automation

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        if not self.automation and isinstance(content, Text):
            for said, meant in (("automation on", "automation off (training)"), ("auto on", "auto off (training)")):
                if said in content.plain:  # the full label, or the narrow terminal's short one
                    i = content.plain.index(said)
                    content = content[:i] + Text(meant, "yellow") + content[i + len(said) :]
                    break
        super().update(content, layout=layout)


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one of a few options (a severity, a runbook)."""

    BINDINGS = [Binding("escape", "cancel", "Back")]

    def __init__(self, title: str, options: list[tuple[str, str]], help_text: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.options = options  # (value, label)
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="menu"):
            yield Label(literal(self.title_text, "bold"), id="dialog-title")
            yield OptionList(*[Option(literal(label), id=value) for value, label in self.options], id="choices")
            yield Static(Text(self.help_text or "Enter: choose · Esc: back", "dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MessageScreen(ModalScreen[None]):
    """A block of text (the briefing, a hint): any key closes it."""

    BINDINGS = [Binding("escape,enter,space", "close", "Close")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(literal(self.title_text, "bold"), id="dialog-title")
            yield Static(literal(self.body), id="dialog-body")
            yield Static(Text("Enter or Esc: close", "dim"))

    def action_close(self) -> None:
        self.dismiss(None)


class TraineeScreen(MainScreen):
    """The main screen in trainee mode."""

    BINDINGS = [
        Binding("v", "classify", "Classify"),
        Binding("r", "runbook", "Runbook"),
        Binding("h", "hint", "Hint"),
        Binding("f", "finish", "Finish"),
        Binding("b", "briefing", "Briefing", show=False),
        Binding("c", "chaos", "Chaos", show=False),  # refused while training
    ]

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self._settled_told = False
        self._finished = False

    def compose(self) -> ComposeResult:
        for w in super().compose():
            if isinstance(w, StatusBar):  # composed inside #top, so it is the same slot
                w = TrainingStatusBar(self.session.trainee.spec.automation, id="status")
            yield w

    # Textual calls the handlers of every class in the MRO: MainScreen's on_mount runs after this
    # one without a super() call.
    def on_mount(self) -> None:
        top = self.query_one("#top")
        top.styles.height = 4  # the banner's two lines above the status and metrics bars
        top.mount(TrainingBanner(id="training-banner"), before=0)
        self.set_interval(BANNER_S, self.update_banner)
        self.call_after_refresh(self._brief)

    def _brief(self) -> None:
        """The briefing, with the scenario clock stopped until the trainee has read it."""
        self.update_banner()
        s = self.session
        was_paused = s.paused
        s.pause()

        def read(_: Any) -> None:
            if not was_paused:
                s.resume()

        self.app.push_screen(MessageScreen(f"Training: {s.trainee.scenario.scenario.title}", self._briefing_text()), read)

    @on(ViewRefreshed)
    def _banner_with_each_view(self, message: ViewRefreshed) -> None:
        # A decorated handler: MainScreen calls its own on_view_refreshed directly for the first
        # frame, which an override here would shadow.
        self.update_banner()

    def _briefing_text(self) -> str:
        t = self.session.trainee.spec
        keys = "a acknowledge · v classify · r runbook · m act · e escalate · k kill switch · d dry-run · h hint · f finish"
        return f"{t.briefing}\n\nYou are paged when an incident is detected. {keys}. Hints cost points."

    def update_banner(self) -> None:
        s = self.session
        tr = s.trainee
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" TRAINING ", "bold black on magenta")
        t.append(" ")
        t.append_text(literal(tr.scenario.scenario.title, "bold"))
        t.append("  trainee ")
        t.append_text(literal(tr.trainee, "bold"))
        t.append(f"  T+{_mmss(tr.offset_s)} / {_mmss(tr.scenario.scenario.run_s)}", "bold cyan")
        t.append(f"  hints {len(tr.hints_used)}/{len(tr.spec.hints)}")
        t.append("  automation " + ("ON" if tr.spec.automation else "off (yours)"), "yellow" if tr.spec.automation else "dim")
        t.append("\n")
        d = s.decisions(self.selected_id)
        if d:
            t.append_text(literal(f" {d['incident']}: ", "bold"))
            t.append("acked" if d["acknowledged"] else "not acked", "green" if d["acknowledged"] else "red")
            t.append(f" · severity {d['severity'] or '?'}", "green" if d["severity"] else "red")
            t.append_text(literal(f" · runbook {d['runbook'] or '?'}", "green" if d["runbook"] else "red"))
            if d["escalated"]:
                t.append(" · escalated", "yellow")
        else:
            t.append(" waiting for a page…", "dim")
        self.query_one(TrainingBanner).update(t)
        if not self._finished and tr.over:
            self._finish()
        elif not self._settled_told and tr.settled():
            self._settled_told = True
            self.notify("Every incident you were paged for is handled: press f for your score (or keep watching).", timeout=8)

    # ------------------------------------------------------------------ trainee actions
    def action_chaos(self) -> None:
        self.notify("No fault injection while training: the scenario brings its own.", severity="warning")

    def action_classify(self) -> None:
        iid = self._selected()
        if iid is None:
            return
        levels = self.session.policy.severity.levels
        options = [(sev, f"{sev}  {levels[sev].meaning}") for sev in SEVERITIES]

        def chosen(sev: str | None) -> None:
            if sev:
                self.perform("classify", lambda: self.session.classify(iid, sev))

        self.app.push_screen(ChoiceScreen(f"Severity of {self._incident_label(iid)}", options), chosen)

    def action_runbook(self) -> None:
        iid = self._selected()
        if iid is None:
            return
        options = [(name, f"{rb.runbook.title}  ({name}, MTTR target {rb.runbook.mttr_target_s // 60} min)") for name, rb in sorted(self.session.policy.runbooks.items())]

        def chosen(rb: str | None) -> None:
            if rb:
                self.perform("runbook", lambda: self.session.choose_runbook(iid, rb))

        self.app.push_screen(ChoiceScreen(f"Runbook for {self._incident_label(iid)}", options), chosen)

    def action_hint(self) -> None:
        tr = self.session.trainee
        left = len(tr.spec.hints) - len(tr.hints_used)
        if left <= 0:
            self.notify("No more hints for this scenario.", severity="warning")
            return
        cost = tr.spec.hints[len(tr.hints_used)].cost

        def take() -> None:
            h = self.session.hint()
            if h is not None:
                self.app.push_screen(MessageScreen(f"Hint ({h.cost} points)", h.text))
                self.update_banner()

        self.confirm("Take a hint?", f"A hint costs {cost} points of your score ({left} left).", take, "Hint")

    def action_briefing(self) -> None:
        self.app.push_screen(MessageScreen("Briefing", self._briefing_text()))

    def action_finish(self) -> None:
        self.confirm("Finish the scenario?", "The engine stops and you get your score report with the reference path.", self._finish, "Finish")

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.session.pause()
        report = self.session.score()
        self.app.outcome.report = report
        self.app.push_screen(ScoreScreen(report))


class ScoreScreen(Screen[None]):
    """The score report: what was right, what was wrong, your actions and the reference path."""

    BINDINGS = [
        Binding("q,escape", "app.quit", "Quit"),
        Binding("Q", "quiz", "Knowledge assessment"),
    ]

    DEFAULT_CSS = """
    ScoreScreen #score-body { padding: 0 1; }
    """

    def __init__(self, report: Any) -> None:
        super().__init__()
        self.report = report

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="score-scroll"):
            yield Static(report_text(self.report), id="score-body")
        yield Footer(compact=True, show_command_palette=False)

    def action_quiz(self) -> None:
        if getattr(self.app, "outcome", None) is not None and self.app.outcome.quiz is not None:
            self.notify("You already took the assessment in this session.", severity="warning")
            return
        self.app.push_screen(QuizScreen.fresh(), self._quiz_done)

    def _quiz_done(self, result: Any) -> None:
        if result is not None:
            self.app.outcome.quiz = result


def report_text(r: Any) -> Text:
    """The score report as rich text (escaped: nothing in it is read as markup)."""
    t = Text()
    t.append(" PASS " if r.passed else " FAIL ", "bold white on green" if r.passed else "bold white on red")
    t.append(" ")
    t.append_text(literal(f"{r.scenario}: {r.title}", "bold"))
    t.append(f"\nscore {r.score_pct:g} % (pass mark {r.pass_pct} %)", "bold")
    if r.hints_used:
        t.append(f"; hints used {r.hints_used} (-{r.hint_penalty} points)")
    t.append("\n\n")
    for c in r.criteria:
        t.append(" ✓ " if c.ok else " ✗ ", "bold green" if c.ok else "bold red")
        t.append_text(literal(c.label, "bold"))
        if c.incident:
            t.append_text(literal(f" [{c.incident}]", "dim"))
        t.append(f"  {c.earned:.1f}/{c.weight:.1f}  ")
        t.append_text(literal(c.detail))
        t.append("\n")
    if r.failures:
        t.append("\nFailed because\n", "bold red")
        for f in r.failures:
            t.append_text(literal(f"  - {f}\n"))
    t.append("\nYour actions\n", "bold")
    if not r.timeline:
        t.append("  (none)\n", "dim")
    for a in r.timeline:
        t.append(f"  +{a['offset_s']:.0f} s ", "cyan")
        t.append_text(literal(f"{a['do']}{' ' + a['incident'] if a['incident'] else ''}: {a['detail']}"))
        if not a["ok"]:
            t.append(" [did not work]", "yellow")
        if a["unsafe"]:
            t.append_text(literal(f" [UNSAFE: {a['unsafe']}]", "bold red"))
        t.append("\n")
    t.append("\nReference path\n", "bold")
    for line in r.reference:
        t.append_text(literal(f"  {line}\n"))
    if r.debrief:
        t.append("\nDebrief\n", "bold")
        t.append_text(literal(r.debrief))
        t.append("\n")
    t.append("\nq: quit · Q: take the knowledge assessment", "dim")
    return t


class QuizScreen(Screen[Any]):
    """The knowledge assessment, one question at a time; dismissed with the graded result."""

    BINDINGS = [
        Binding("a", "answer(0)", "A", show=False),
        Binding("b", "answer(1)", "B", show=False),
        Binding("c", "answer(2)", "C", show=False),
        Binding("d", "answer(3)", "D", show=False),
        Binding("escape", "abandon", "Abandon"),
    ]

    DEFAULT_CSS = """
    QuizScreen #quiz-box { padding: 1 2; }
    QuizScreen #quiz-question { margin-bottom: 1; }
    QuizScreen OptionList { height: auto; max-height: 12; }
    """

    def __init__(self, questions: list[Any], *, seed: int, pass_pct: int, bank_sha256: str) -> None:
        super().__init__()
        self.questions = questions
        self.seed = seed
        self.pass_pct = pass_pct
        self.bank_sha256 = bank_sha256
        self.answers: dict[str, str] = {}
        self.index = 0
        self.result: Any = None

    @classmethod
    def fresh(cls, seed: int | None = None, count: int | None = None) -> "QuizScreen":
        """A new attempt drawn from the bank with the training settings (random seed unless given)."""
        import secrets

        from engine.training.config import load_training_config
        from engine.training.quiz import draw, load_bank

        cfg = load_training_config()
        bank = load_bank()
        s = secrets.randbelow(1_000_000) if seed is None else seed
        return cls(draw(bank, s, count or cfg.quiz.questions), seed=s, pass_pct=cfg.quiz.pass_pct, bank_sha256=bank.sha256)

    def compose(self) -> ComposeResult:
        with Vertical(id="quiz-box"):
            yield Label(id="quiz-progress")
            yield Static(id="quiz-question")
            yield OptionList(id="quiz-choices")
            yield Static(id="quiz-result")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        from engine.training.quiz import LETTERS

        ol = self.query_one("#quiz-choices", OptionList)
        ol.clear_options()
        if self.index >= len(self.questions):
            return
        q = self.questions[self.index]
        self.query_one("#quiz-progress", Label).update(Text(f"Knowledge assessment · question {self.index + 1} of {len(self.questions)} · {q.topic} · pass mark {self.pass_pct} %", "bold"))
        self.query_one("#quiz-question", Static).update(literal(q.text, "bold"))
        ol.add_options([Option(literal(f"{LETTERS[i]}) {c}"), id=str(i)) for i, c in enumerate(q.choices)])
        ol.highlighted = 0
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.result is None:
            self.action_answer(int(event.option.id or 0))

    def action_answer(self, i: int) -> None:
        from engine.training.quiz import LETTERS

        if self.result is not None:
            self.dismiss(self.result)
            return
        q = self.questions[self.index]
        if i >= len(q.choices):
            return
        self.answers[q.id] = LETTERS[i]
        self.index += 1
        if self.index < len(self.questions):
            self._show()
        else:
            self._grade()

    def _grade(self) -> None:
        from engine.training.quiz import grade

        self.result = grade(self.questions, self.answers, seed=self.seed, pass_pct=self.pass_pct, bank_sha256=self.bank_sha256)
        r = self.result
        self.query_one("#quiz-choices", OptionList).display = False
        self.query_one("#quiz-progress", Label).update(Text(" PASS " if r.passed else " FAIL ", "bold white on green" if r.passed else "bold white on red"))
        self.query_one("#quiz-question", Static).update(Text(f"{r.correct}/{r.total} correct: {r.score_pct:g} % (pass mark {r.pass_pct} %, seed {r.seed})", "bold"))
        t = Text()
        for q in r.questions:
            if not q.correct:
                t.append("✗ ", "bold red")
                t.append_text(literal(q.text, "bold"))
                t.append_text(literal(f"\n   you: {q.given or '(no answer)'} · right: {q.answer}\n   {q.explain}\n"))
        t.append("\nany answer key or Esc: close", "dim")
        self.query_one("#quiz-result", Static).update(t)

    def action_abandon(self) -> None:
        self.dismiss(self.result)


class TrainingApp(ConsoleApp):
    """``ggen train start``: the console in trainee mode."""

    CSS_PATH = CONSOLE_CSS
    TITLE = "ggen console: training"

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        from console.tui.training import TrainingOutcome

        self.main = TraineeScreen(session)
        self.outcome = TrainingOutcome()

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen

        main_keys = [b for b in MainScreen.BINDINGS if getattr(b, "action", "") != "chaos"]
        self.push_screen(HelpScreen([("Training", list(TraineeScreen.BINDINGS)), ("Incident and fleet", main_keys), ("Console", list(self.BINDINGS))]))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from App.get_system_commands(self, screen)  # no fault injection from the palette


class QuizApp(App[Any]):
    """``ggen certify quiz --console``: the knowledge assessment full screen."""

    CSS_PATH = CONSOLE_CSS
    TITLE = "ggen: knowledge assessment"

    def __init__(self, screen: QuizScreen) -> None:
        super().__init__()
        self.quiz = screen
        self.result: Any = None

    def on_mount(self) -> None:
        self.push_screen(self.quiz, self._done)

    def _done(self, result: Any) -> None:
        self.result = result
        self.exit(result)


def short(iid: str) -> str:
    return short_id(iid)
