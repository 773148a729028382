"""The JSON log lines: one object per line, extras as fields, level switch."""

from __future__ import annotations

import io
import json
import logging

from s3purge import logs


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_extras_and_context() -> None:
    stream = io.StringIO()
    logs.setup(debug=False, stream=stream)
    log = logging.getLogger("s3purge")
    logs.CONTEXT["request_id"] = "req-42"
    try:
        log.info("vendor call", extra={"cdn": "edge", "status": 200, "latency_ms": 1.5})
        log.debug("plan", extra={"batches": 3})  # debug is off
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("provider error", extra={"cdn": "edge"})
    finally:
        logs.CONTEXT.clear()
    first, second = lines(stream)
    assert {k: first[k] for k in ("level", "service", "message", "cdn", "status", "latency_ms", "request_id")} == {
        "level": "INFO", "service": "s3purge", "message": "vendor call", "cdn": "edge", "status": 200,
        "latency_ms": 1.5, "request_id": "req-42",
    }  # fmt: skip
    assert second["level"] == "ERROR" and "ValueError: boom" in str(second["exception"])


def test_setting_up_again_replaces_the_handler_and_level() -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.setup(debug=False, stream=first)
    logs.setup(debug=True, stream=second)
    logging.getLogger("s3purge").debug("plan", extra={"batches": 1})
    assert first.getvalue() == "" and lines(second)[0]["batches"] == 1
