"""Shared fixtures: a moto server, a real Varnish caching its bucket, strict vendor emulators."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from hypothesis import settings

from s3purge.demo.bed import Moto, Varnish, public_read_policy
from tests.emulators.base import Emulator

SITE = "site"
"""The bucket Varnish caches (path-style on the moto server)."""
HOST = "www.example.test"

E = TypeVar("E", bound=Emulator)

# Property tests check values, not speed: hypothesis' default 200 ms deadline per example is a
# wall-clock assertion that fails on a loaded machine (performance is measured in bench/).
settings.register_profile("s3purge", deadline=None)
settings.load_profile("s3purge")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    server = Moto().start()
    os.environ["AWS_ENDPOINT_URL"] = server.url
    yield server
    server.close()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def aws(moto_server: Moto) -> Moto:
    """A clean moto account for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def boto(aws: Moto) -> Any:
    """boto3 clients on the moto server: boto.s3, boto.sqs, ..."""
    import boto3

    class Clients:
        def __getattr__(self, service: str) -> Any:
            client = boto3.client(service)
            setattr(self, service, client)
            return client

    return Clients()


@pytest.fixture
def site(boto: Any) -> str:
    """The public-read bucket Varnish caches."""
    boto.s3.create_bucket(Bucket=SITE)
    boto.s3.put_bucket_policy(Bucket=SITE, Policy=public_read_policy(SITE))
    return SITE


@pytest.fixture(scope="session")
def varnish(moto_server: Moto) -> Iterator[Varnish]:
    cache = Varnish(origin_port=moto_server.port, bucket=SITE).start()
    yield cache
    cache.close()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog wired to the "s3purge" logger (which does not propagate once set up for JSON)."""
    logger = logging.getLogger("s3purge")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # else caplog's root handler records every line a second time
    caplog.handler.setLevel(logging.DEBUG)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)
    logger.propagate = propagate


@contextmanager
def serving(emulator: E) -> Iterator[E]:
    """Run an emulator for the block; afterwards no request may have broken the vendor's rules."""
    with emulator:
        yield emulator
    assert emulator.violations == [], emulator.violations
