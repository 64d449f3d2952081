"""The console application: takes a session, shows the main screen, offers help and the palette."""
from __future__ import annotations

import gc
import os
import time
from typing import Any, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from console.tui.screens.main import SPEEDS, MainScreen

FIRST_FRAME_ENV = "GGEN_CONSOLE_FIRST_FRAME_FILE"  # bench/console_bench.py: where to write the first frame's time


class ConsoleApp(App[None]):
    """``ggen console``: a running engine, its incidents and receipts, and the keys to act."""

    CSS_PATH = "console.tcss"
    TITLE = "ggen console"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", show=False),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, session: Any, *, freeze_startup_objects: bool = False, exit_with_parent: bool = False) -> None:
        super().__init__()
        self.session = session
        self.main = MainScreen(session)
        self.freeze_startup_objects = freeze_startup_objects
        self.parent_pid = os.getppid() if exit_with_parent else None

    def on_mount(self) -> None:
        path = os.environ.get(FIRST_FRAME_ENV)
        if path:
            self.main.on_first_frame.append(lambda: _write_time(path))
        if self.freeze_startup_objects:
            self.main.on_first_frame.append(_freeze_startup_objects)
            self.set_timer(10.0, gc.enable)  # the collector is back on even if no frame ever shows data
        if self.parent_pid is not None:
            self.set_interval(1.0, self._check_parent)
        if callable(getattr(self.session, "start_services", None)):
            self.main.on_first_frame.append(self._start_services)
        self.push_screen(self.main)

    def _check_parent(self) -> None:
        """A console served to a browser quits when its server is gone (it is re-parented)."""
        if os.getppid() != self.parent_pid:
            self.exit()

    def _start_services(self) -> None:
        """The control socket and notification delivery start once the console is on screen."""

        def start() -> None:
            self.session.start_services()
            if self.freeze_startup_objects:
                _freeze_startup_objects()  # what the services loaded lives as long as the console

        self.run_worker(start, thread=True, group="services", exit_on_error=False)

    def on_unmount(self) -> None:
        self.session.stop()  # idempotent: the CLI stops it again after run() returns

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen([("Incident and fleet", list(MainScreen.BINDINGS)), ("Console", list(self.BINDINGS))]))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        m = self.main
        if screen is not m:
            return
        for b in MainScreen.BINDINGS:
            if isinstance(b, Binding) and b.description and not b.action.startswith(("panel", "app.")):
                yield SystemCommand(b.description, f"key {b.key_display or b.key.split(',')[0]}", _runner(m, b.action))
        for speed in SPEEDS:
            yield SystemCommand(f"Speed ×{speed:g}", "set the engine's clock speed", lambda s=speed: m.set_speed(s))
        try:
            menu = self.session.fault_menu()
        except Exception:  # an attached engine that went away: no fault commands to offer
            menu = []
        for kind, target, itype, desc in menu:
            yield SystemCommand(f"Inject {kind} on {target}", f"{itype}: {desc}", lambda k=kind, t=target: m.inject_fault(k, t))


def _runner(screen: MainScreen, action: str) -> Any:
    def run() -> None:
        getattr(screen, f"action_{action}")()

    return run


def _freeze_startup_objects() -> None:
    """Move everything alive after the first frame (modules, the engine, the widget tree) out of
    the garbage collector's reach: a full collection then scans only what was made since, instead
    of pausing the UI for 40-130 ms every few seconds (measured with 200 services at 10x).
    ``ggen console`` turns the collector off while it starts; it is back on from here."""
    gc.collect()
    gc.freeze()
    gc.enable()


def _write_time(path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{time.time():.6f}\n")
