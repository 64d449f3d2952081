"""Shared pieces of the source, actuator and fleet-serve tests: free ports, a copy of the policy
with its time windows scaled down (so real-time tests take seconds, not minutes), and real
`ggen fleet serve`, Prometheus and Alertmanager processes in a temporary directory."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: Any = None, method: str | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"), headers={"Content-Type": "application/json"})
    try:
        with _NO_PROXY.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(pred: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = pred()
        except (OSError, ValueError):
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# Scaled-down time windows: detection sustain /10, hold windows and hysteresis a few seconds.
SCALES: dict[str, Callable[[int], int]] = {
    "sustain_s": lambda n: max(1, round(n / 10)),
    "hold_s": lambda n: 3,
    "hysteresis_s": lambda n: 5,
    "assess_after_s": lambda n: 3,
    "deploy_s": lambda n: 4,
    "config_s": lambda n: 2,
    "no_recovery_after_first_action_s": lambda n: 60,
}


def scaled_policy(dest: Path) -> Path:
    """A copy of runbooks/ (policy files only) with the time windows of SCALES rewritten."""
    src = REPO / "runbooks"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("fleet.toml", "mitigation.toml", "severity.toml", "escalation.toml"):
        shutil.copy(src / name, dest / name)
    shutil.copytree(src / "incidents", dest / "incidents")
    pattern = re.compile(r"^(\s*)(" + "|".join(SCALES) + r")(\s*=\s*)(\d+)", re.M)
    for path in [dest / "mitigation.toml", dest / "severity.toml", dest / "escalation.toml", *sorted((dest / "incidents").glob("*.toml"))]:
        text = path.read_text()
        path.write_text(pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{SCALES[m.group(2)](int(m.group(4)))}", text))
    return dest


class Proc:
    """A child process in its own group, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log = log
        self.env = env
        self.p: subprocess.Popen | None = None

    def start(self) -> "Proc":
        fh = open(self.log, "ab")
        self.p = subprocess.Popen(self.argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=self.env)
        fh.close()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.p is None or self.p.poll() is not None:
            return
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def ggen_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "console.cli.main", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


class FleetServe(Proc):
    def __init__(self, tmp: Path, *, speed: float = 1.0, policy_dir: Path | None = None, seed: int = 1) -> None:
        self.port = free_port()
        argv = ggen_argv("fleet", "serve", "--port", str(self.port), "--speed", str(speed), "--seed", str(seed))
        if policy_dir is not None:
            argv += ["--policy-dir", str(policy_dir)]
        super().__init__(argv, tmp / "fleet-serve.log", child_env())
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "FleetServe":
        super().start()
        wait_for(lambda: http_json(self.url + "/healthz", timeout=1)[0] == 200, 20, what=f"ggen fleet serve on {self.url}\n{self.log_tail()}")
        return self

    def inject(self, kind: str, target: str | None = None, **params: Any) -> dict[str, Any]:
        code, body = http_json(self.url + "/faults", {"kind": kind, "target": target, "params": params or None})
        assert code == 201, body
        return body["fault"]

    def clear(self, fault_id: str) -> None:
        code, body = http_json(self.url + f"/faults/{fault_id}", method="DELETE")
        assert code == 200, body

    def state(self) -> dict[str, Any]:
        return http_json(self.url + "/state")[1]


class Prometheus(Proc):
    """A real Prometheus scraping ``targets`` every second (rules and Alertmanager optional)."""

    def __init__(self, tmp: Path, targets: list[str], *, rules: str | None = None, alertmanager: str | None = None, port: int | None = None) -> None:
        if not Path(PROMETHEUS).exists():
            raise AssertionError(f"{PROMETHEUS} is missing: .ci/run installs Debian's prometheus package")
        self.port = port or free_port()
        self.dir = tmp / "prometheus"
        self.dir.mkdir(exist_ok=True)
        cfg = [
            "global:", "  scrape_interval: 1s", "  evaluation_interval: 1s", "  scrape_timeout: 1s",
            "scrape_configs:", "  - job_name: fleet", "    static_configs:", "      - targets: [" + ", ".join(f'"{t}"' for t in targets) + "]",
        ]
        if rules is not None:
            (self.dir / "rules.yml").write_text(rules)
            cfg += ["rule_files:", f'  - "{self.dir / "rules.yml"}"']
        if alertmanager is not None:
            cfg += ["alerting:", "  alertmanagers:", "    - static_configs:", f'        - targets: ["{alertmanager}"]']
        (self.dir / "prometheus.yml").write_text("\n".join(cfg) + "\n")
        argv = [
            PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", "--rules.alert.resend-delay=1s",
        ]
        super().__init__(argv, tmp / "prometheus.log", child_env())
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "Prometheus":
        super().start()
        wait_for(lambda: _NO_PROXY.open(self.url + "/-/ready", timeout=1).status == 200, 30, what=f"Prometheus on {self.url}\n{self.log_tail()}")
        return self

    def query(self, promql: str) -> list[dict[str, Any]]:
        code, body = http_json(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert code == 200, body
        return body["data"]["result"]


class Alertmanager(Proc):
    """A real Alertmanager (clustering off) with one webhook receiver and short group timers."""

    def __init__(self, tmp: Path, webhook_url: str) -> None:
        if not Path(ALERTMANAGER).exists():
            raise AssertionError(f"{ALERTMANAGER} is missing: .ci/run installs Debian's prometheus-alertmanager package")
        self.port = free_port()
        self.dir = tmp / "alertmanager"
        self.dir.mkdir(exist_ok=True)
        (self.dir / "alertmanager.yml").write_text(
            "\n".join([
                "route:", "  receiver: ggen", "  group_by: [alertname, service]", "  group_wait: 1s", "  group_interval: 1s", "  repeat_interval: 1h",
                "receivers:", "  - name: ggen", "    webhook_configs:", f"      - url: {webhook_url}", "        send_resolved: true",
            ]) + "\n"
        )
        argv = [
            ALERTMANAGER, f"--config.file={self.dir / 'alertmanager.yml'}", f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn",
        ]
        super().__init__(argv, tmp / "alertmanager.log", child_env())
        self.url = f"http://127.0.0.1:{self.port}"
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> "Alertmanager":
        super().start()
        wait_for(lambda: _NO_PROXY.open(self.url + "/-/ready", timeout=1).status == 200, 30, what=f"Alertmanager on {self.url}\n{self.log_tail()}")
        return self


def write_config(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "config.toml"
    path.write_text(text)
    return path


class Watch:
    """`ggen watch --json` on a data directory, its stdout read as JSON lines while it runs."""

    def __init__(self, tmp: Path, data_dir: Path, *args: str) -> None:
        self.out = tmp / "watch.out"
        self.err = tmp / "watch.err"
        self.argv = ggen_argv("--data-dir", str(data_dir), "watch", "--json", *args)
        self.p: subprocess.Popen | None = None

    def start(self) -> "Watch":
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.p = subprocess.Popen(self.argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL, start_new_session=True, env=child_env())
        return self

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.out.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line still being written
        return out

    def events(self, **match: Any) -> list[dict[str, Any]]:
        return [x for x in self.lines() if x.get("type") == "event" and all(x.get(k) == v for k, v in match.items())]

    def notices(self, kind: str) -> list[dict[str, Any]]:
        return [x for x in self.lines() if x.get("type") == "notice" and x.get("kind") == kind]

    def wait_event(self, timeout: float, **match: Any) -> dict[str, Any]:
        return wait_for(lambda: (self.events(**match) or [None])[0] or self._dead(), timeout, what=f"event {match}\n{self.stderr()}")

    def wait_notice(self, kind: str, timeout: float, after: int = 0) -> dict[str, Any]:
        return wait_for(lambda: (self.notices(kind)[after:] or [None])[0] or self._dead(), timeout, what=f"notice {kind}\n{self.stderr()}")

    def _dead(self) -> None:
        if self.p is not None and self.p.poll() is not None:
            raise AssertionError(f"ggen watch exited with {self.p.returncode}:\n{self.stderr()}")
        return None

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")[-3000:] if self.err.exists() else ""

    def stop(self, timeout: float = 15.0) -> int:
        if self.p is None:
            return 0
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        return self.p.returncode


def ggen(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(ggen_argv(*args), capture_output=True, text=True, timeout=timeout, env=child_env())
