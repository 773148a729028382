"""Fixtures shared by the vendor tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from tenacity import wait_fixed

from s3purge.execute import Executor


@pytest.fixture
def executor() -> Iterator[Executor]:
    """An executor that retries without waiting (vendor Retry-After is still honoured)."""
    executor = Executor(backoff=wait_fixed(0))
    yield executor
    executor.close()


@pytest.fixture(autouse=True)
def s3purge_logs_reach_caplog() -> Iterator[None]:
    """Earlier tests may have run a CLI command or the Lambda in this process, which set the
    "s3purge" logger up for JSON lines (not propagating): these tests read its lines with caplog."""
    logger = logging.getLogger("s3purge")
    propagate, level = logger.propagate, logger.level
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    yield
    logger.propagate = propagate
    logger.setLevel(level)
