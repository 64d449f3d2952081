"""config.toml's [source], [sources.*] and [actuators] sections and the mapping files: the shipped
examples load, every mistake is an error that names the file and the key, the command line turns
them into one-line errors, and the delivery section's owner and ours ignore each other."""
from __future__ import annotations

import pytest

from engine.config import example_config_path, load_connect_config
from engine.datadir import DataDir
from engine.delivery.config import example_config_path as delivery_example, load_delivery_config
from engine.policy.loader import PolicyError, load_model
from engine.sources import prepare_source
from engine.sources.mapping import AlertmanagerMapping, PrometheusMapping, load_alertmanager_mapping, load_prometheus_mapping
from sources_support import ggen


def test_the_commented_example_loads_and_coexists_with_delivery():
    cfg = load_connect_config(example_config_path())
    assert cfg.source.kind == "sim"
    assert set(cfg.actuators.defined) == {"scale-script", "ops-webhook"}
    assert cfg.actuators.route("scale_concurrency") == "scale-script" and cfg.actuators.route("throttle") == "ops-webhook"
    assert cfg.actuators.route("failover_region") == "none"
    assert cfg.actuators.enabled_names == []  # dry-run until enabled
    assert cfg.sources.prometheus.stale_ms == 12_500
    load_delivery_config(example_config_path())  # [delivery]'s loader ignores our sections
    load_connect_config(delivery_example())  # and ours ignores [delivery]


def test_packaged_mappings_load():
    _, prom = load_prometheus_mapping()
    assert ("service", "p99_ms") in prom.provided() and ("region", "edge_error_pct") in prom.provided()
    _, am = load_alertmanager_mapping()
    assert am.severity["critical"] == "Sev1" and am.rules[0].incident_type_label == "ggen_type"


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("[source]\nkind = 'graphite'\n", "source.kind", "Input should be"),
        ("[sources.prometheus]\ninterval_ms = 5\n", "sources.prometheus.interval_ms", "greater than or equal to 100"),
        ("[sources.prometheus]\nurl = 'ftp://prom'\n", "sources.prometheus.url", "not an http"),
        ("[sources.prometheus]\nintervall_ms = 1000\n", "sources.prometheus.intervall_ms", "Extra inputs"),
        ("[sources.prometheus]\nwindow = '5 minutes'\n", "sources.prometheus.window", "PromQL duration"),
        ("[sources.alertmanager]\nlisten = 'nowhere'\n", "sources.alertmanager.listen", "not HOST:PORT"),
        ("[sources.alertmanager]\nlisten = '127.0.0.1:99999'\n", "sources.alertmanager.listen", "outside 0..65535"),
        ("[sources.file]\npace = 'fast'\n", "sources.file.pace", "Input should be"),
        ("[actuators.x]\ntype = 'command'\ncommand = []\n", "actuators.x.command", "at least 1"),
        ("[actuators.x]\ntype = 'smoke'\n", "actuators.x.type", "does not match any of the expected tags"),
        ("[actuators.x]\ntype = 'webhook'\nurl = 'http://a'\ntimeout_ms = 0\n", "actuators.x.timeout_ms", "greater than or equal to 10"),
        ("[actuators.x]\ntype = 'webhook'\nurl = 'http://a'\nretry = 3\n", "actuators.x.retry", "Extra inputs"),
        ("[actuators]\nroutes = { '*' = 'ghost' }\n[actuators.x]\ntype = 'webhook'\nurl = 'http://a'\n", "actuators.routes.*", "unknown actuator 'ghost'"),
        ("[actuators.a]\ntype = 'webhook'\nurl = 'http://a'\n[actuators.b]\ntype = 'webhook'\nurl = 'http://b'\n", "actuators.routes", "say which takes which"),
        ("[actuators.sim]\ntype = 'webhook'\nurl = 'http://a'\n", "actuators.sim", "cannot name an actuator"),
        ("[actuators]\nroutes = 'all'\n", "actuators.routes", "must be a table"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, field, says):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as exc:
        load_connect_config(path)
    assert exc.value.field == field and says in exc.value.message, str(exc.value)
    assert str(exc.value).startswith(f"{path}: field {field}: ")


def test_broken_toml_and_one_actuator_routes_everything(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[sources.prometheus\nurl = 1\n")
    with pytest.raises(PolicyError, match="invalid TOML"):
        load_connect_config(path)
    path.write_text("[actuators.only]\ntype = 'command'\ncommand = ['/bin/true']\nenabled = true\n")
    cfg = load_connect_config(path)
    assert cfg.actuators.route("anything") == "only" and cfg.actuators.enabled_names == ["only"]
    assert load_connect_config(tmp_path / "absent.toml").source.kind == "sim"


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("[[signals]]\nkind = 'service'\nsignal = 'p99'\nquery = 'x'\n", "signals.0", "has no signal 'p99'"),
        ("[[signals]]\nkind = 'pod'\nsignal = 'p99_ms'\nquery = 'x'\n", "signals.0.kind", "Input should be"),
        ("[[signals]]\nkind = 'service'\nsignal = 'p99_ms'\nquery = ''\n", "signals.0.query", "at least 1"),
        ("[mapping]\nwindow = 'soon'\n[[signals]]\nkind = 'service'\nsignal = 'p99_ms'\nquery = 'x'\n", "mapping.window", "PromQL duration"),
        ("[labels]\nservice = 'not a label'\n[[signals]]\nkind = 'service'\nsignal = 'p99_ms'\nquery = 'x'\n", "labels.service", "not a label name"),
        ("[[signals]]\nkind = 'service'\nsignal = 'p99_ms'\nquery = 'a'\n[[signals]]\nkind = 'service'\nsignal = 'p99_ms'\nquery = 'b'\n", "signals", "mapped twice"),
    ],
)
def test_prometheus_mapping_errors_name_the_field(tmp_path, text, field, says):
    path = tmp_path / "prom.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as exc:
        load_model(path, PrometheusMapping)
    assert exc.value.field == field and says in exc.value.message, str(exc.value)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("name = 'x'\n", "exactly one of incident_type and incident_type_label"),
        ("name = 'x'\nincident_type = 'latency_spike'\nincident_type_label = 't'\n", "exactly one of"),
        ("name = 'x'\nincident_type = 'outage'\n", "Input should be"),
        ("name = 'x'\nincident_type = 'latency_spike'\nmatch_re = { alertname = '(' }\n", "not a regular expression"),
        ("name = 'x'\nincident_type = 'latency_spike'\nseverity = 'P1'\n", "Input should be"),
    ],
)
def test_alertmanager_mapping_errors(tmp_path, rule, says):
    path = tmp_path / "am.toml"
    path.write_text("[[rules]]\n" + rule)
    with pytest.raises(PolicyError) as exc:
        load_model(path, AlertmanagerMapping)
    assert exc.value.field.startswith("rules.0") and says in exc.value.message, str(exc.value)


def test_prepare_source_checks_the_command_line_and_mapping(tmp_path):
    dd = DataDir(tmp_path / "data").ensure()
    assert prepare_source(dd).kind == "sim"
    with pytest.raises(ValueError, match="--url needs a real source"):
        prepare_source(dd, url="http://x:9090")
    with pytest.raises(ValueError, match="--url 'prom:9090' is not an http"):
        prepare_source(dd, source="prometheus", url="prom:9090")
    with pytest.raises(ValueError, match="--listen 'everywhere'"):
        prepare_source(dd, source="alertmanager", listen="everywhere")
    with pytest.raises(PolicyError) as exc:
        prepare_source(dd, source="file")
    assert exc.value.field == "sources.file.path"
    (dd.root / "bad-mapping.toml").write_text("[[signals]]\nkind = 'queue'\nsignal = 'p99_ms'\nquery = 'x'\n")
    dd.config_path.write_text("[sources.prometheus]\nmapping = 'bad-mapping.toml'\n")
    with pytest.raises(PolicyError) as exc:
        prepare_source(dd, source="prometheus")
    assert exc.value.path.endswith("bad-mapping.toml") and exc.value.field == "signals.0"
    dd.config_path.write_text("[actuators.hook]\ntype = 'webhook'\nurl = 'http://127.0.0.1:1/a'\n")
    setup = prepare_source(dd, source="prometheus")
    assert setup.dry_run and "no actuator has enabled = true" in setup.notes[0]
    dd.config_path.write_text("[actuators.hook]\ntype = 'webhook'\nurl = 'http://127.0.0.1:1/a'\nenabled = true\n")
    assert not prepare_source(dd, source="prometheus").dry_run


def test_watch_turns_configuration_mistakes_into_one_line_errors(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text("[sources.prometheus]\ninterval_ms = 'often'\n")
    r = ggen("--data-dir", str(data), "watch", "--source", "prometheus")
    assert r.returncode == 1 and r.stderr.startswith("ggen: ") and "field sources.prometheus.interval_ms" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (data / "config.toml").write_text("")
    r = ggen("--data-dir", str(data), "watch", "--source", "prometheus", "--speed", "10")
    assert r.returncode == 2 and "runs on the wall clock" in r.stderr
    r = ggen("--data-dir", str(data), "watch", "--url", "http://127.0.0.1:9090")
    assert r.returncode == 2 and "--url needs a real source" in r.stderr
    r = ggen("--data-dir", str(data), "watch", "--source", "file")
    assert r.returncode == 1 and "sources.file.path" in r.stderr
