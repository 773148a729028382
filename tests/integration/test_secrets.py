"""Secrets on the moto server: batched fetches, one client per service, and one bad secret failing alone."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from s3purge import secrets, secrets_aws
from s3purge.config import parse
from s3purge.model import Change
from s3purge.pipeline import Pipeline
from s3purge.secrets import Secret
from tests.conftest import serving
from tests.emulators.base import Emulator


def count_calls(client: Any, operation: str) -> list[str]:
    """Names of the `operation` calls the client makes from now on (botocore's own event hooks)."""
    seen: list[str] = []
    client.meta.events.register(
        f"before-call.{client.meta.service_model.service_name}.{operation}",
        lambda **kwargs: seen.append(operation),
    )
    return seen


def test_parameters_come_ten_to_a_call_and_a_missing_one_is_named(boto: Any) -> None:
    for i in range(12):
        boto.ssm.put_parameter(Name=f"/s3purge/p{i}", Value=f"value-{i}", Type="SecureString")
    boto.secretsmanager.create_secret(Name="s3purge/api", SecretString=json.dumps({"a": "va", "b": "vb"}))
    wanted = [Secret("ssm", f"/s3purge/p{i}") for i in range(12)]
    wanted += [Secret("ssm", "/s3purge/p3"), Secret("ssm", "/s3purge/missing")]  # the same parameter twice
    wanted += [Secret("secretsmanager", "s3purge/api", "a"), Secret("secretsmanager", "s3purge/api", "b")]
    ssm_calls = count_calls(secrets_aws._client("ssm"), "GetParameters")
    one_by_one = count_calls(secrets_aws._client("ssm"), "GetParameter")
    sm_calls = count_calls(secrets_aws._client("secretsmanager"), "GetSecretValue")

    problems = secrets.fetch(wanted)

    assert [s.reveal() for s in wanted[:13]] == [f"value-{i}" for i in range(12)] + ["value-3"]
    assert [s.reveal() for s in wanted[-2:]] == ["va", "vb"]
    assert problems == {wanted[13]: "ssm:/s3purge/missing: ParameterNotFound (or not readable)"}
    assert (len(ssm_calls), len(one_by_one), len(sm_calls)) == (2, 0, 1)  # 13 names: 10 + 3; one secret id


CONFIG = """\
cdns:
  good: {{vendor: http, endpoints: ["{good}"], max_attempts: 1}}
  locked: {{vendor: http, endpoints: ["{locked}"], max_attempts: 1, headers: {{X-Token: {{ssm: /s3purge/late}}}}}}
buckets:
  site:
    - {{cdn: good, hosts: [www.example.test]}}
    - {{cdn: locked, hosts: [www.example.test]}}
"""


@pytest.mark.usefixtures("aws")
def test_a_secret_that_cannot_be_fetched_stops_only_its_cdn_until_it_can(
    boto: Any, logs: pytest.LogCaptureFixture
) -> None:
    with serving(Emulator()) as good, serving(Emulator()) as locked:
        pipeline = Pipeline(parse(CONFIG.format(good=good.url, locked=locked.url)))
        first = pipeline.run([Change("site", "a.html", "created", "m1")], time.monotonic() + 10)
        second = pipeline.run([Change("site", "b.html", "created", "m2")], time.monotonic() + 10)
        boto.ssm.put_parameter(Name="/s3purge/late", Value="sesame", Type="SecureString")
        pipeline.vault.retry_after = 0  # the backoff has passed
        third = pipeline.run([Change("site", "c.html", "created", "m3")], time.monotonic() + 10)

    assert [r.path for r in good.requests] == ["/a.html", "/b.html", "/c.html"]
    assert [(r.path, r.headers["x-token"]) for r in locked.requests] == [("/c.html", "sesame")]
    for report in (first, second):  # reported on each invocation, retryable, naming the reference
        (failed,) = report.failures()
        assert failed.batch.cdn == "locked" and failed.retryable
        assert "ssm:/s3purge/late: ParameterNotFound" in failed.detail
        assert report.failed_cdns() == {report.changes[0].source: {"locked"}}
    assert third.ok
    unavailable = [r for r in logs.records if r.getMessage() == "cdn unavailable"]
    assert len(unavailable) == 2 and all(r.cdn == "locked" for r in unavailable)  # type: ignore[attr-defined]
    assert "sesame" not in logs.text
