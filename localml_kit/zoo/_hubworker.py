"""One Hub call in a child process: ``python -P _hubworker.py JOB.json``.

The kit runs every Hub call here so that it can stop one at any moment: past
its deadline the parent kills this process (and its group), and nothing of the
call (no thread, no retry, no log line) outlives the parent's return. This file
imports only the standard library and huggingface_hub, so it runs however the
kit is installed.

The job (JSON): ``{"kind": "get", "url", "params", "timeout", "result"}`` reads
one JSON answer through huggingface_hub's session; ``{"kind": "fetch", "repo_id",
"options", "result"}`` runs ``snapshot_download``. The outcome goes to the
``result`` path as ``{"ok": value}`` or ``{"error": {"types", "reason"}}``:
the exception's class names (most derived first) and a one-line reason.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def _reason(exc: BaseException) -> str:
    """``HTTP 503 Service Unavailable``, else ``ReadTimeout: timed out`` (the first line)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        phrase = getattr(response, "reason_phrase", "") or getattr(response, "reason", "") or ""
        return f"HTTP {status} {phrase}".strip()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _get(job: dict[str, Any]) -> Any:
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    response = get_session().get(
        job["url"],
        params=job.get("params") or None,
        headers=build_hf_headers(),
        timeout=job["timeout"],
    )
    hf_raise_for_status(response)
    return response.json()


def _fetch(job: dict[str, Any]) -> str:
    from huggingface_hub import snapshot_download

    return str(snapshot_download(job["repo_id"], **job["options"]))


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    result = Path(job["result"])
    try:
        outcome: dict[str, Any] = {"ok": _get(job) if job["kind"] == "get" else _fetch(job)}
    except Exception as exc:
        types = [t.__name__ for t in type(exc).__mro__ if issubclass(t, BaseException)]
        outcome = {"error": {"types": types, "reason": _reason(exc)}}
    partial = result.with_suffix(".partial")
    partial.write_text(json.dumps(outcome), encoding="utf-8")
    os.replace(partial, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
