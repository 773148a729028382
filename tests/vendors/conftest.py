"""Fixtures shared by the vendor tests."""

from __future__ import annotations

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
