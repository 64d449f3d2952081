"""The control socket's metric history keeps its samples in arrays: the same answers as before
(per-minute averages and peaks, errors by status code over a window), and nothing per tick for
the garbage collector to walk (full collections of a long-running console stay short)."""
from __future__ import annotations

import gc

from console.tui.session import virtual_session
from engine.control.history import CodeSeries, MetricsHistory, _Minute


def test_minute_fold_gives_column_averages_and_peaks():
    m = _Minute(60_000, 3)
    rows = [(1.0, 10.0, 0.0), (3.0, 30.0, 5.0), (2.0, 20.0, 1.0)]
    for r in rows:
        m.add(r)
    assert m.count == 3
    avg, peak = m.fold()
    assert avg == (2.0, 20.0, 2.0) and peak == (3.0, 30.0, 5.0)


def test_code_series_answers_by_tick_and_drops_old_entries_in_batches():
    s = CodeSeries()
    for t in range(0, 10_000_000, 1000):  # 10,000 ticks, two codes each
        s.add(t, {500: (0.01, 4.0), 503: (0.02, 8.0)})
        s.drop_before(t - 1_800_000)
    assert len(s) == 2 * 1801
    assert len(s.t) < 2 * 1801 + 2 * 4096 + 2  # compacted as it went
    got = s.since(9_998_000)
    assert got == [(9_998_000, {500: (0.01, 4.0), 503: (0.02, 8.0)}), (9_999_000, {500: (0.01, 4.0), 503: (0.02, 8.0)})]
    assert s.since(20_000_000) == []


def test_errors_by_status_come_back_from_the_engine_history():
    sess = virtual_session(seed=1)
    h = MetricsHistory(tick_ms=sess.engine.tick_ms)
    sess.engine.inject("bad_deploy", "app", actor="test")
    start = sess.engine.now_ms
    for _ in range(120):
        sess.engine.run_for(1000)
        with sess.engine.lock:
            h.record(sess.engine)
    samples = h.codes_since("app", start + 60_000)
    assert samples and all(t >= start + 60_000 for t, _ in samples)
    assert any(500 in d and d[500][0] > 0.05 and d[500][1] > 0 for _, d in samples)  # the bad revision's 5xx
    assert h.codes_since("no-such-service", 0) == []


def test_a_long_history_leaves_nothing_per_tick_for_the_garbage_collector():
    sess = virtual_session(fleet_size=60, seed=1)
    h = MetricsHistory(tick_ms=sess.engine.tick_ms)
    for kind, target in (("cpu_saturation", "svc-0042"), ("bad_deploy", "svc-0007")):
        sess.engine.inject(kind, target, actor="test")

    def run(ticks: int) -> int:
        for _ in range(ticks):
            sess.engine.run_for(1000)
            with sess.engine.lock:
                h.record(sess.engine)
        gc.collect()
        return len(gc.get_objects())

    after_warmup = run(120)
    after_more = run(300)
    # 300 more ticks of 60 services (errors by status on many of them) add a few hundred objects
    # at most (incidents, notices); stored per tick they were tens of thousands.
    assert after_more - after_warmup < 3000, after_more - after_warmup
