"""Driving a real terminal in tmux from a test: read the pane, send keys, wait for text."""
from __future__ import annotations

import subprocess
import time


def pane(name: str) -> str:
    """What the tmux session ``name`` shows now, as plain text."""
    return subprocess.run(["tmux", "capture-pane", "-t", name, "-p"], capture_output=True, text=True).stdout


def keys(name: str, *k: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", name, *k], check=True)


def until(name: str, needle: str, timeout: float) -> str:
    """The pane once it shows ``needle``; fails with what it shows after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = pane(name)
        if needle in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} did not appear in {name} in {timeout} s; it shows:\n{text}")
