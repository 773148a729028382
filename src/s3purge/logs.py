"""Structured JSON logs (Powertools Logger) on the "s3purge" logger every module uses."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from s3purge.errors import ConfigError

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


def parse_debug(value: str | None) -> bool:
    """The `debug` environment variable: true/false (so "false" really means off)."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"debug: expected true or false, got {value!r}")


def setup(debug: bool = False, stream: TextIO | None = None) -> None:
    """JSON lines on `stream` (stdout by default); DEBUG adds plans, never secrets."""
    from aws_lambda_powertools import Logger

    Logger(
        service="s3purge",
        level=logging.DEBUG if debug else logging.INFO,
        logger_handler=logging.StreamHandler(stream or sys.stdout),
    )
    logger = logging.getLogger("s3purge")
    logger.setLevel(logging.DEBUG if debug else logging.INFO)  # also when a handler already exists
    logger.propagate = False  # Lambda's root handler would repeat each line
