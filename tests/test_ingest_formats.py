"""Every declarative text format: its sample lines parse to the fields they promise, detection
picks it, and a broken format file is reported with its file and field."""
from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from analyzer.ingest import detect, load_catalog
from analyzer.ingest.formats import formats_dir, load_catalog as load_from
from engine.policy.loader import PolicyError
from ingest_support import ingest, iso, rows, write

CATALOG = load_catalog()
SAMPLES = [(f.name, i, s) for f in CATALOG.text for i, s in enumerate(f.sample)]


def test_every_text_format_has_samples_and_the_required_ones_exist():
    names = set(CATALOG.text_names)
    assert {"syslog_rfc3164", "syslog_rfc5424", "access_log", "apache_error", "nginx_error", "log4j", "python_logging", "iso_level_message"} <= names
    for f in CATALOG.text:
        assert len(f.sample) >= 2, f.name


@pytest.mark.parametrize(("name", "index", "sample"), SAMPLES, ids=[f"{n}-{i}" for n, i, _ in SAMPLES])
def test_sample_line_parses_to_its_expected_fields(tmp_path: Path, name: str, index: int, sample) -> None:
    path = write(tmp_path / "sample.log", sample.line + "\n")
    # Year-less syslog takes its year from the file's modification time.
    import os

    os.utime(path, (1769350500, 1769350500))  # 2026-01-25
    summary = ingest(tmp_path, path, fmt=name)
    assert summary.rejects == 0, rows(tmp_path, "SELECT reason FROM rejects")
    [row] = rows(tmp_path, "SELECT * FROM events")
    attrs = json.loads(row["attrs"]) if row["attrs"] else {}
    for key, want in sample.expect.items():
        if key == "ts":
            assert iso(row["ts"]) == want, (key, row["ts"])
        elif key.startswith("attrs."):
            assert str(attrs.get(key[6:])) == want, (key, attrs)
        else:
            assert row[key] == want, (key, row[key])
    assert row["source_line"] == 1


@pytest.mark.parametrize(("name", "index", "sample"), SAMPLES, ids=[f"{n}-{i}" for n, i, _ in SAMPLES])
def test_detection_picks_the_format_of_each_sample(name: str, index: int, sample) -> None:
    assert detect((sample.line + "\n").encode(), CATALOG).format == name


@pytest.mark.parametrize("fmt", CATALOG.text, ids=lambda f: f.name)
def test_re2_and_python_agree_on_the_samples(fmt) -> None:
    """Detection uses Python's re and parsing uses RE2 (DuckDB): they must read a line alike."""
    con = duckdb.connect()
    names = fmt.group_names
    for sample in fmt.sample:
        m = re.match(fmt.regex, sample.line)
        assert m is not None
        got = con.execute("SELECT regexp_extract(?, ?, ?)", [sample.line, fmt.regex, names]).fetchone()[0]
        assert {k: v for k, v in got.items()} == {k: (m.group(k) or "") for k in names}


def test_a_bad_format_file_names_the_file_and_field(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(formats_dir(), tmp_path / "fmt")
    bad = tmp_path / "fmt" / "text" / "log4j.toml"
    bad.write_text(bad.read_text().replace("regex = '^", "regex = '^(?P<unclosed", 1))
    with pytest.raises(PolicyError) as err:
        load_from(tmp_path / "fmt")
    assert "log4j.toml" in str(err.value) and "regex" in str(err.value)


def test_a_format_needs_a_timestamp_group(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(formats_dir(), tmp_path / "fmt")
    p = tmp_path / "fmt" / "text" / "nginx_error.toml"
    p.write_text(p.read_text().replace("(?P<timestamp>", "(?P<when>", 1))
    with pytest.raises(PolicyError) as err:
        load_from(tmp_path / "fmt")
    assert "nginx_error.toml" in str(err.value) and "timestamp" in str(err.value)


def test_level_vocabulary_rejects_a_word_with_two_levels(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(formats_dir(), tmp_path / "fmt")
    p = tmp_path / "fmt" / "levels.toml"
    p.write_text(p.read_text().replace('DEBUG = ["debug"', 'DEBUG = ["warn", "debug"'))
    with pytest.raises(PolicyError) as err:
        load_from(tmp_path / "fmt")
    assert "levels.toml" in str(err.value) and "warn" in str(err.value)
