"""The --filter language of `ggen logs tail`: parsing, errors, and the same answer on live records
and on DuckDB (where it is compiled to a parameterized condition, never spliced in as SQL)."""
from __future__ import annotations

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.control.logfilter import And, Compare, FilterError, Not, Or, Text, matches, parse, to_sql

RECORDS = [
    {"level": "ERROR", "service": "app", "message": "POST /internal/checkout 504 payments call timed out", "status_code": 504, "dependency": "payments"},
    {"level": "WARN", "service": "app", "message": "POST /internal/checkout 400 validation_error: schema v2", "status_code": 400, "error_type": "validation_error"},
    {"level": "WARN", "service": "api", "message": "POST /v1/actions 429 rate limited", "status_code": 429},
    {"level": "INFO", "service": "governor", "message": "scaling_applied: concurrency 20 -> 50", "account_id": "acct-1001"},
    {"level": "ERROR", "service": "edge", "message": "health check failed for us-central1", "region": "us-central1"},
    {"level": "ERROR", "service": "api", "message": "POST /v1/actions 502 app returned 5xx", "status_code": "502"},
]


def _pick(expr: str) -> list[int]:
    e = parse(expr)
    return [i for i, r in enumerate(RECORDS) if matches(e, r)]


def test_the_runbook_forms():
    assert _pick("status_code >= 500") == [0, 5]
    assert _pick("status_code >= 400 AND status_code < 500") == [1, 2]
    assert _pick("validation_error") == [1]
    assert parse("status_code >= 400 AND status_code < 500") == And((Compare("status_code", ">=", 400.0), Compare("status_code", "<", 500.0)))


def test_more_forms():
    assert _pick("level >= WARN AND NOT service = edge") == [0, 1, 2, 5]
    assert _pick("(status_code = 502 OR status_code == 504) app") == [0, 5]
    assert _pick("'rate limited'") == [2]
    assert _pick('message ~ "HEALTH CHECK"') == [4]
    assert _pick("account_id = acct-1001") == [3]
    assert _pick("attrs.region = us-central1") == [4]
    assert _pick("status_code != 504 status_code >= 500") == [5]
    assert _pick("timed or rate") == [0, 2]
    assert parse("not a") == Not(Text("a"))
    assert isinstance(parse("a OR b c"), Or)


@pytest.mark.parametrize(
    "bad, where",
    [
        ("", "empty"),
        ("status_code >=", "needs a value"),
        ("(status_code > 1", "not closed"),
        ("status_code > 1)", "unexpected ')'"),
        ("AND x", "needs a term"),
        ("'open", "unterminated quote"),
        ("5xx = 3", "not a field name"),
        ("a = = b", "needs a value"),
        ("(" * 50 + "a" + ")" * 50, "nested deeper"),
        ("x" * 3000, "longer than"),
    ],
)
def test_errors_say_what_and_where(bad, where):
    with pytest.raises(FilterError) as ei:
        parse(bad)
    assert where in str(ei.value)


def _db(records):
    con = duckdb.connect()
    con.execute("CREATE TABLE events (ts TIMESTAMPTZ, level VARCHAR, service VARCHAR, message VARCHAR, attrs JSON)")
    for i, r in enumerate(records):
        attrs = {k: v for k, v in r.items() if k not in ("level", "service", "message")}
        con.execute("INSERT INTO events VALUES (to_timestamp(?), ?, ?, ?, ?)", [1_700_000_000 + i, r["level"], r["service"], r["message"], orjson.dumps(attrs).decode()])
    return con


def _sql_pick(con, expr: str) -> list[int]:
    cond, params = to_sql(parse(expr))
    rows = con.execute(f"SELECT epoch(ts)::BIGINT - 1700000000 FROM events WHERE {cond} ORDER BY ts", params).fetchall()
    return [int(r[0]) for r in rows]


@pytest.mark.parametrize(
    "expr",
    ["status_code >= 500", "status_code >= 400 AND status_code < 500", "validation_error", "level >= WARN AND NOT service = edge", "(status_code = 502 OR status_code == 504) app", "'rate limited'", 'message ~ "HEALTH CHECK"', "account_id = acct-1001", "NOT status_code >= 500", "level < ERROR"],
)
def test_duckdb_gives_the_same_answer(expr):
    con = _db(RECORDS)
    assert _sql_pick(con, expr) == _pick(expr)


def test_hostile_text_is_a_value_never_sql():
    con = _db(RECORDS)
    for expr in ["\"'; DROP TABLE events; --\"", "service = \"x' OR '1'='1\"", "message ~ '%'", "message ~ '_'"]:
        assert _sql_pick(con, expr) == _pick(expr)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(RECORDS)
    with pytest.raises(FilterError):
        parse("status_code); DROP TABLE events; -- = 1")


WORDS = ["app", "api", "timed", "502", "rate", "validation_error", "acct-1001", "x"]
atoms = st.one_of(
    st.builds(lambda w: w, st.sampled_from(WORDS)),
    st.builds(lambda op, n: f"status_code {op} {n}", st.sampled_from([">", ">=", "<", "<=", "=", "!="]), st.sampled_from([400, 429, 500, 502, 504])),
    st.builds(lambda lv: f"level >= {lv}", st.sampled_from(["INFO", "WARN", "ERROR"])),
    st.builds(lambda s: f"service = {s}", st.sampled_from(["app", "api", "edge"])),
)
exprs = st.recursive(atoms, lambda inner: st.one_of(st.builds(lambda a, b: f"({a} AND {b})", inner, inner), st.builds(lambda a, b: f"({a} OR {b})", inner, inner), st.builds(lambda a: f"NOT {a}", inner)), max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exprs)
def test_duckdb_and_python_agree_on_generated_filters(expr):
    con = _db(RECORDS)
    assert _sql_pick(con, expr) == _pick(expr)
