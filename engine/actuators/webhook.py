"""The webhook actuator: an HTTP POST of the action as JSON, with a timeout and retries.

Connection errors, timeouts and HTTP 408, 425, 429 and 5xx are retried (``retries`` more times,
``backoff_ms`` doubling); other 4xx answers are final. A 2xx answer with an empty body, or a JSON
object (``{"ok": ..., "detail": ..., "changes": ...}``), is the result; any other body is garbage
and a failure. The HTTP status, attempts and the escaped, capped response go into the receipt.
Environment proxies are not used. It never raises.
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

from engine.actuators.document import action_document, encode, escape_output, first_line, read_answer, result_from_answer
from engine.mitigate.actuator import Action, ActionResult

RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


class WebhookActuator:
    """POSTs each action routed to it to ``url``."""

    type = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        timeout_ms: int = 5_000,
        retries: int = 2,
        backoff_ms: int = 500,
        headers: dict[str, str] | None = None,
        enabled: bool = False,
        max_response_bytes: int = 64 * 1024,
    ) -> None:
        self.name = name
        self.url = url
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.backoff_ms = backoff_ms
        self.headers = dict(headers or {})
        self.enabled = enabled
        self.max_response_bytes = max_response_bytes
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.calls = 0

    def apply(self, action: Action, now_ms: int) -> ActionResult:
        base: dict[str, Any] = {"actuator": self.name, "type": self.type, "url": self.url}
        if not self.enabled:
            return ActionResult(
                False,
                f"dry-run: actuator {self.name} is not enabled (set enabled = true in [actuators.{self.name}]); {action.name} on {action.target} was not sent",
                outcome=dict(base, dry_run=True),
            )
        self.calls += 1
        body = encode(action_document(action, now_ms, self.name))
        started = time.monotonic()
        attempts = 0
        status: int | None = None
        raw = b""
        error: str | None = None
        while True:
            attempts += 1
            status, raw, error = self._post(body)
            retry = error is not None and (status is None or status in RETRY_STATUSES)
            if not retry or attempts > self.retries:
                break
            time.sleep(self.backoff_ms * 2 ** (attempts - 1) / 1000.0)
        shown, cut = escape_output(raw)
        outcome = dict(base, http_status=status, attempts=attempts, duration_ms=int((time.monotonic() - started) * 1000), response=shown, response_truncated=cut)
        if error is not None:
            return ActionResult(False, f"webhook {self.name}: {error}" + (f" after {attempts} attempts" if attempts > 1 else ""), outcome=outcome)
        if len(raw) > self.max_response_bytes:
            return ActionResult(False, f"webhook {self.name}: response longer than {self.max_response_bytes} bytes", outcome=outcome)
        answer, problem = read_answer(raw, what=f"webhook {self.name}'s response")
        if problem is not None:
            return ActionResult(False, problem, outcome=outcome)
        return result_from_answer(answer, f"webhook {self.name}: {action.name} on {action.target} accepted (HTTP {status})", outcome)

    def _post(self, body: bytes) -> tuple[int | None, bytes, str | None]:
        """One attempt: (HTTP status or None, response body, error or None)."""
        req = urllib.request.Request(self.url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "ggen-actuator", **self.headers})
        try:
            with self._opener.open(req, timeout=self.timeout_ms / 1000.0) as resp:
                return resp.status, resp.read(self.max_response_bytes + 1), None
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read(self.max_response_bytes + 1)
            except OSError:
                raw = b""
            said = first_line(escape_output(raw, 200)[0])
            return exc.code, raw, f"HTTP {exc.code}" + (f": {said}" if said else "")
        except urllib.error.URLError as exc:
            return None, b"", f"cannot reach {self.url}: {exc.reason}"
        except (TimeoutError, OSError) as exc:
            return None, b"", f"no answer from {self.url} within {self.timeout_ms} ms" if isinstance(exc, TimeoutError) else f"cannot reach {self.url}: {exc}"
