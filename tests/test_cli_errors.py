"""Wrong flags and values get one line on stderr that says what and where (the command, the
option, where to read more) and exit 2, like every other error of ggen; help stays help."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ggen(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"GGEN_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "console.cli.main", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["incidents", "list", "--since", "yesterday"], "ggen incidents list: Invalid value for '--since': not a time: 'yesterday'"),
        (["drill", "--bogus"], "ggen drill: No such option '--bogus'"),
        (["incidents", "show"], "ggen incidents show: Missing argument 'ID'"),
        (["nosuchcommand"], "ggen: No such command 'nosuchcommand'"),
        (["incidents", "export", "--format", "xml"], "ggen incidents export: Invalid value for '--format'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    out = ggen(*args, tmp_path=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(expected)
    assert lines[0].endswith("--help')")


def test_help_is_still_help(tmp_path: Path) -> None:
    out = ggen("incidents", "--help", tmp_path=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("Usage: ggen incidents") and "verify" in out.stdout
    bare = ggen("incidents", tmp_path=tmp_path)
    assert bare.returncode == 2 and bare.stderr.startswith("Usage: ggen incidents")
