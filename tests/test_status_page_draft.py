"""The draft -> publish round trip works whatever the draft file is called."""
from __future__ import annotations

import shlex

from click.testing import CliRunner

from console.cli.main import cli
from ops_support import ledger_with_incident


def run(env, *args):
    return CliRunner().invoke(cli, list(args), env=env)


def test_draft_to_an_md_file_publishes_with_the_printed_command(tmp_path):
    dd, eng, inc = ledger_with_incident(tmp_path / "dd")
    env = {"GGEN_DATA_DIR": str(dd.root)}
    out = tmp_path / "my drafts" / "draft.md"
    r = run(env, "status-page", "draft", "--incident-id", inc.id, "--output", str(out), "--at", "2026-01-25T14:02:30Z")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if "publish with:" in x)
    argv = shlex.split(line.split("publish with:", 1)[1])
    assert argv[:3] == ["ggen", "status-page", "publish"] and argv[-1] == str(out)
    r = run(env, *argv[1:], "--by", "katja", "--at", "2026-01-25T14:03:00Z")
    assert r.exit_code == 0, r.output
    assert "published update #1 (public)" in r.output


def test_a_draft_that_is_not_json_is_refused_in_one_line_naming_the_file(tmp_path):
    dd, eng, inc = ledger_with_incident(tmp_path / "dd")
    env = {"GGEN_DATA_DIR": str(dd.root)}
    bad = tmp_path / "draft.md"
    bad.write_text("# Update 1\nwe are looking into it\n")
    r = run(env, "status-page", "publish", "--draft", str(bad))
    assert r.exit_code == 1
    assert r.output.startswith(f"ggen: {bad}") and "invalid JSON" in r.output and len(r.output.strip().splitlines()) == 1
