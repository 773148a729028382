"""Receipts: each accepted call's vendor purge id, logged with the changes (message, bucket/key) it covers."""

from __future__ import annotations

import re
import time

import pytest

from s3purge.execute import Executor
from s3purge.metrics import receipts
from s3purge.model import Change, Report
from s3purge.plan import plan
from tests.vendors.test_contract import CASES, Aws, Case, vendor

ID_PATTERNS = {
    "akamai": r"^purgeId=edcp-\w+ estimatedSeconds=\d+ supportId=edcp-\w+$",  # both ids, for a support ticket
    "cloudflare": r"^id=[0-9a-f]{32}$",
    "cloudfront": r"^invalidation \w+ on \w+ \(\w+\)$",
    "edgecast": r"^id [0-9a-f]{12}$",
    "fastly": r"^purge ids \S+$",
    "highwinds": r"^job [0-9a-f]{16}$",
}
"""What each vendor's answer gives to quote; the self-hosted `http` vendor has no purge id."""


@pytest.mark.parametrize("case", [c for c in CASES if c.vendor in ID_PATTERNS], ids=lambda c: c.vendor)
def test_each_receipt_holds_the_vendors_purge_id_and_the_source(
    case: Case, request: pytest.FixtureRequest, executor: Executor
) -> None:
    aws = Aws(request.getfixturevalue("aws"), request.getfixturevalue("boto")) if case.needs_aws else None
    changes = [Change("site", "docs/a b.html", "created", "msg-7"), Change("site", "b.css", "created", "msg-8")]
    with vendor(case, aws) as (_, config):
        planned = plan(changes, config)
        outcomes = executor.run(planned.batches, config.cdns, time.monotonic() + 20)
    found = receipts(Report(changes=changes, outcomes=outcomes, routed=planned.routed), config)

    assert found and all(o.ok for o in outcomes)
    for receipt in found:
        assert receipt["vendor"] == case.vendor
        assert re.match(ID_PATTERNS[case.vendor], receipt["receipt"]), receipt["receipt"]
    assert {m for r in found for m in r["message_ids"]} == {"msg-7", "msg-8"}
    assert {o for r in found for o in r["objects"]} == {"site/docs/a b.html", "site/b.css"}
