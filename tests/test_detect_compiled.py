"""The generated detection check (engine/detect/rules.py: compile_rules) agrees with the rules
read one by one through OPS and Sustained, for any rules, values, baselines and clock."""
from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detect.rules import OPS, Baseline, Sustained, compile_rules

SIGNALS = ("a", "b")
values = st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.just(float("nan")), st.sampled_from([0.0, 5.0, 5.0 + 1e-12]))
rule = st.tuples(
    st.sampled_from(SIGNALS),
    st.sampled_from(sorted(OPS)),
    st.sampled_from([0.0, 5.0, 100.0, -3.5]),
    st.one_of(st.none(), st.sampled_from([1.0, 50.0])),
    st.sampled_from([0, 1000, 60_000]),
)


def reference(rules, obj, name, trackers, now, baselines, kind):
    """detection as the engine read it before: each rule through OPS, then its Sustained."""
    hold, fired = False, None
    for idx, (sig, op, thr, below, _), tr in zip(range(len(rules)), rules, trackers):
        h = OPS[op](getattr(obj, sig), thr)
        if h and below is not None:
            b = baselines.get((kind, name, sig))
            h = b is not None and b.value is not None and b.value < below
        if not h:
            tr.since_ms = None
            continue
        hold = True
        if tr.since_ms is None:
            tr.since_ms = now
        if now - tr.since_ms >= tr.window_ms:
            fired = (fired or []) + [(idx, tr.since_ms)]
    return hold, fired


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(rule, min_size=1, max_size=4),
    ticks=st.lists(st.tuples(values, values, st.integers(0, 90_000)), min_size=1, max_size=8),
    base=st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
)
def test_compiled_check_matches_the_rules_read_one_by_one(rules, ticks, base):
    kind, name = "service", "svc"
    check = compile_rules(kind, [(i, sig, op, thr, below, w, (lambda s: lambda o: getattr(o, s))(sig)) for i, (sig, op, thr, below, w) in enumerate(rules)])
    baselines = {}
    if base is not None:
        for sig in SIGNALS:
            b = Baseline(600.0, 1.0)
            b.value = base
            baselines[(kind, name, sig)] = b
    mine = [Sustained(w) for *_, w in rules]
    theirs = [Sustained(w) for *_, w in rules]
    now = 0
    for a, b, step in ticks:
        now += step
        obj = SimpleNamespace(a=a, b=b)
        assert check(obj, name, mine, now, baselines) == reference(rules, obj, name, theirs, now, baselines, kind)
        assert [t.since_ms for t in mine] == [t.since_ms for t in theirs]


def test_each_signal_is_read_once_per_entity():
    reads = []

    def get(o):
        reads.append(o)
        return 7.0

    check = compile_rules("service", [(0, "p99_ms", ">", 5.0, None, 0, get), (1, "p99_ms", ">", 1.0, None, 10, get), (2, "p99_ms", "<", 1.0, None, 0, get)])
    trs = [Sustained(0), Sustained(10), Sustained(0)]
    assert check("svc", "svc", trs, 100, {}) == (True, [(0, 100)])
    assert reads == ["svc"]
    assert check("svc", "svc", trs, 110, {}) == (True, [(0, 100), (1, 100)])
