"""The JSON Lines source: samples in either shape are read and followed as the file grows, bad
lines are counted with their line numbers and announced (never silently dropped), a truncated
or replaced file is read again, recordings replay at the pace of their time stamps, and stdin
works for piping (through `ggen watch --source file --path -`)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from engine.clock import WallClock
from engine.core import Engine
from engine.policy.bundle import load_policy
from engine.sources.jsonl import BadSample, FileSource, parse_sample_line
from engine.sources.mapping import FileMapping, Renames
from engine.sources.observed import ObservedFleet
from sources_support import child_env, ggen_argv, wait_for

POLICY = load_policy()


def test_line_shapes_and_refusals():
    ts, got = parse_sample_line(b'{"ts_ms": 1767225600000, "kind": "service", "entity": "app", "signal": "p99_ms", "value": 1834.5}')
    assert ts == 1767225600000 and got == [("service", "app", "p99_ms", 1834.5)]
    ts, got = parse_sample_line(b'{"ts": "2026-01-01T00:00:01Z", "tenant": "acct-1001", "signals": {"depth": 1250, "lag_p99_s": null}}')
    assert ts == 1767225601000 and got == [("queue", "acct-1001", "depth", 1250.0), ("queue", "acct-1001", "lag_p99_s", None)]
    ts, got = parse_sample_line(b'{"service": "checkout", "signals": {"error_pct": 2}}', FileMapping(rename=Renames(service={"checkout": "api"})))
    assert ts is None and got == [("service", "api", "error_pct", 2.0)]
    bad = {
        b"not json": "not JSON",
        b"[1]": "not a JSON object",
        b'{"kind": "pod", "entity": "x", "signal": "a", "value": 1}': "is not one of service",
        b'{"service": "app", "region": "x", "signals": {"p99_ms": 1}}': "exactly one of",
        b'{"service": "", "signals": {"p99_ms": 1}}': "non-empty string",
        b'{"service": "app"}': "no signal",
        b'{"service": "app", "signals": {"p99": 1}}': "has no signal 'p99'",
        b'{"service": "app", "signals": {"p99_ms": "fast"}}': "is not a number",
        b'{"service": "app", "signals": {"p99_ms": true}}': "is not a number",
        b'{"ts_ms": "now", "service": "app", "signals": {"p99_ms": 1}}': "ts_ms must be an integer",
        b'{"ts": "yesterday", "service": "app", "signals": {"p99_ms": 1}}': "not an RFC 3339 time",
    }
    for line, says in bad.items():
        with pytest.raises(BadSample, match=says):
            parse_sample_line(line)


def engine_on(src: FileSource) -> Engine:
    fleet = ObservedFleet(POLICY.fleet, POLICY.mitigation, [src])
    eng = Engine(POLICY, clock=WallClock(), fleet=fleet)
    fleet.notify = eng.notice
    src.bind(eng)
    return eng


def test_follows_appends_counts_bad_lines_and_rereads_a_replaced_file(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"service": "app", "signals": {"p99_ms": 100}}\n')
    src = FileSource(str(path), poll_ms=20, stale_after_ms=60_000)
    eng = engine_on(src)
    notices: list = []
    eng.on_notice(notices.append)
    src.start()
    try:
        wait_for(lambda: src.samples == 1, 5, what="first sample")
        with path.open("a") as fh:
            fh.write('{"service": "app", "signals": {"p99_ms": 2500, "error_pct": 0.5}}\nthis is not json\n{"service": "nosuch", "signals": {"p99_ms": 1}}\n{"service": "app", "sig')
            fh.flush()
            wait_for(lambda: src.bad_lines == 1, 5, what="bad line")
            assert src.store.fresh(eng.clock.now_ms())[("service", "app", "p99_ms")] == 2500.0
            fh.write('nals": {"cpu_pct": 33}}\n')  # the unfinished line completes
        wait_for(lambda: ("service", "app", "cpu_pct") in src.store.fresh(eng.clock.now_ms()), 5, what="completed line")
        assert list(src.bad) == [{"line": 3, "reason": "not JSON (Expecting value at column 1)"}]
        assert any(n["kind"] == "source.bad_line" and "line 3" in n["text"] for n in notices)
        assert any(n["kind"] == "source.unknown_entity" and "'nosuch'" in n["text"] for n in notices)
        # Log rotation: the file is replaced; the new one is read from its start.
        os.replace(tmp_path / "samples.jsonl", tmp_path / "old.jsonl")
        path.write_text('{"service": "api", "signals": {"p99_ms": 77, "cpu_pct": 12, "memory_pct": 40}}\n')
        wait_for(lambda: ("service", "api", "p99_ms") in src.store.fresh(eng.clock.now_ms()), 5, what="replaced file")
        # Truncation in place (copytruncate): the file is shorter than what was read; read it again.
        path.write_text('{"service": "database", "signals": {"p99_ms": 9}}\n')
        wait_for(lambda: ("service", "database", "p99_ms") in src.store.fresh(eng.clock.now_ms()), 5, what="truncated file")
    finally:
        src.stop()
    st = src.status()
    assert st["bad_lines"] == 1 and st["lines"] >= 6 and st["source"] == "file"


def test_timestamps_pace_a_replay(tmp_path):
    path = tmp_path / "rec.jsonl"
    t0 = 1767225600000
    path.write_text("".join(json.dumps({"ts_ms": t0 + i * 300, "service": "app", "signals": {"p99_ms": 100 + i}}) + "\n" for i in range(4)))
    src = FileSource(str(path), pace="timestamps", poll_ms=20)
    engine_on(src)
    started = time.monotonic()
    src.start()
    try:
        wait_for(lambda: src.samples == 4, 5, what="all samples")
    finally:
        src.stop()
    assert 0.8 <= time.monotonic() - started < 3.0  # three 300 ms gaps


def test_waits_for_a_file_that_does_not_exist_yet(tmp_path):
    path = tmp_path / "later.jsonl"
    src = FileSource(str(path), poll_ms=20)
    engine_on(src)
    src.start()
    try:
        wait_for(lambda: src.last_error and "waiting for it" in src.last_error, 5, what="waiting")
        path.write_text('{"region": "us-central1", "signals": {"consecutive_failed_checks": 0}}\n')
        wait_for(lambda: src.samples == 1, 5, what="sample")
        assert src.last_error is None
    finally:
        src.stop()


def test_watch_reads_samples_from_stdin(tmp_path):
    lines = "".join(json.dumps({"service": s, "signals": {"p99_ms": 100.0}}) + "\n" for s in (x.name for x in POLICY.fleet.services))
    p = subprocess.Popen(ggen_argv("--data-dir", str(tmp_path / "data"), "watch", "--json", "--source", "file", "--path", "-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), start_new_session=True)
    try:
        p.stdin.write(lines.encode() + b"garbage\n")
        p.stdin.flush()
        out = b""
        end = time.monotonic() + 20
        while b"source.fresh" not in out and time.monotonic() < end:
            out += p.stdout.readline()
        assert b"source.fresh" in out, p.stderr.read1(4000) if hasattr(p.stderr, "read1") else b""
    finally:
        p.send_signal(15)
        rest, err = p.communicate(timeout=15)
    out += rest
    assert p.returncode == 0, err
    kinds = [json.loads(x)["kind"] for x in out.splitlines() if x.strip()]
    assert "source.bad_line" in kinds and "source.fresh" in kinds
    assert b"source file -" in err
