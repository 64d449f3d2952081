"""The documented demo, ``ggen ingest sample_logs/<set>``, ingests cleanly: the set's manifest is
recognised and skipped with a note; other JSON files, whatever their name, are still ingested."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ingest_support import ingest, write

SAMPLES = Path(__file__).parent.parent / "sample_logs"


def test_a_sample_set_ingests_without_rejects(tmp_path: Path) -> None:
    summary = ingest(tmp_path, SAMPLES / "errors-bad-deploy")
    manifest = [f for f in summary.files if f.source.endswith("manifest.json")]
    assert len(manifest) == 1 and manifest[0].status == "skipped" and "sample-logs manifest" in manifest[0].note
    assert summary.rejects == 0
    assert summary.rows_ingested > 10_000


def test_only_the_sample_manifest_is_skipped(tmp_path: Path) -> None:
    doc = json.loads((SAMPLES / "errors-bad-deploy" / "manifest.json").read_text())
    renamed = tmp_path / "in" / "other.json"
    renamed.parent.mkdir()
    shutil.copy(SAMPLES / "errors-bad-deploy" / "manifest.json", renamed)
    del doc["incidents"]
    lookalike = write(tmp_path / "in" / "x" / "manifest.json", json.dumps(doc))
    events = write(tmp_path / "in" / "y" / "manifest.json", '[{"ts": "2026-01-25T14:00:00Z", "msg": "a manifest of events"}]')
    summary = ingest(tmp_path, renamed, lookalike, events)
    assert [f.status for f in summary.files] == ["ingested", "ingested", "ingested"]
    assert summary.files[2].events == 1


def test_sample_java_logs_carry_stack_traces(tmp_path: Path) -> None:
    """Every committed set's log4j log has failed requests with Java stack traces below them,
    which ingest attaches to their ERROR line as continuation lines."""
    from ingest_support import rows

    files = sorted(SAMPLES.glob("*/logs/action-handler.log.gz"))
    assert len(files) == 5
    summary = ingest(tmp_path, *files)
    for f in summary.files:
        assert f.format == "log4j" and f.continuation_lines > 0 and f.rejects == 0, f.to_dict()
    traced = rows(
        tmp_path,
        "SELECT level, message FROM events WHERE message LIKE '%' || chr(10) || chr(9) || 'at %' ORDER BY ts LIMIT 1",
    )
    assert traced and traced[0]["level"] == "ERROR"
    body = traced[0]["message"].split("\n")
    assert body[1].startswith("c.ggen.handler.HandlerException: ")
    assert body[2].startswith("\tat c.ggen.handler.ActionHandler.handle(ActionHandler.java:")
    assert any(x.startswith("Caused by: ") for x in body) and body[-1].startswith("\t... ")
