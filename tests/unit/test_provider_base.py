"""The provider template: Retry-After parsing, JSON bodies, the order in which `judge` asks its hooks,
and the vendors' own wait hooks (their Retry-After sources)."""

from __future__ import annotations

import email.utils
import time
from typing import ClassVar

import httpx
import pytest

from s3purge.errors import MAX_RETRY_AFTER, Rejected, Retryable
from s3purge.model import Batch
from s3purge.providers.answers import COMMON_HINTS, json_body, retry_after
from s3purge.providers.base import Limits, Provider, VendorOptions, join
from s3purge.providers.cloudflare import Cloudflare, CloudflareOptions
from s3purge.providers.fastly import Fastly, FastlyOptions
from s3purge.secrets import Secret

REQUEST = httpx.Request("POST", "https://api.example.com/purge")


def answer(status: int, body: bytes = b"", **headers: str) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers, request=REQUEST)


def wait(value: str) -> float | None:
    return retry_after(httpx.Headers({"Retry-After": value}))


def test_retry_after_reads_delta_seconds() -> None:
    assert wait("30") == 30.0
    assert wait("0.5") == 0.5
    assert retry_after(httpx.Headers()) is None


def test_retry_after_reads_an_http_date_as_seconds_from_now() -> None:
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    seconds = wait(later)
    assert seconds is not None and 115 <= seconds <= 120  # the date has whole seconds
    assert wait("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: go now


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("-5", 0.0),  # a negative wait is no wait
        ("", None),
        ("soon", None),
        ("nan", None),  # float() takes these: they are no number of seconds
        ("inf", None),
        ("-inf", None),
        ("Wed, 31 Feb 2015 07:28:00 GMT", None),  # no such day
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),  # year out of range
        ("1, 2 3", None),
    ],
)
def test_retry_after_takes_hostile_values_as_no_answer(value: str, seconds: float | None) -> None:
    assert wait(value) == seconds


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'{"id": "p-1"}', {"id": "p-1"}),
        (b'["a", "b"]', {}),  # JSON, but not an object
        (b"<html>502 Bad Gateway</html>", {}),
        (b"", {}),
        (b"\xff\xfe{", {}),  # not text at all
    ],
)
def test_json_body_is_an_object_or_empty(body: bytes, parsed: dict[str, object]) -> None:
    assert json_body(answer(200, body)) == parsed


def test_join_takes_a_base_with_or_without_its_slash() -> None:
    assert join("https://api.example.com/v4/", "/zones") == join("https://api.example.com/v4", "/zones")


class Plain(Provider):
    """A vendor that declares nothing: every hook at its default."""

    vendor = "plain"
    supports: ClassVar = {}
    limits = Limits(max_items=1)


class Coded(Plain):
    """A vendor with its own 429 rule, body codes, receipts and hints."""

    throttled = frozenset({429, 507})
    hints: ClassVar = {403: "grant the purge permission"}
    other_hint = "see the vendor's code"

    def wait(self, response: httpx.Response) -> float | None:
        return float(response.headers.get("x-reset", "7"))

    def accepted(self, response: httpx.Response) -> str | None:
        body = json_body(response)
        return f"id={body['id']}" if response.is_success and "id" in body else None

    def rejected(self, response: httpx.Response) -> None:
        if code := json_body(response).get("code"):
            raise Rejected(f"code {code}", "fix the code")


def test_the_defaults_are_the_common_rule() -> None:
    plain = Plain("cdn", VendorOptions())
    assert plain.judge(answer(204)) == ""
    with pytest.raises(Retryable) as slow:
        plain.judge(answer(429, **{"Retry-After": "3"}))
    assert slow.value.retry_after == 3.0
    with pytest.raises(Retryable):
        plain.judge(answer(503))
    with pytest.raises(Rejected) as refused:
        plain.judge(answer(404, b"no such zone"))
    assert refused.value.hint == COMMON_HINTS[404]
    assert "no such zone" in str(refused.value)


def test_a_throttled_status_waits_what_the_vendor_says() -> None:
    coded = Coded("cdn", VendorOptions())
    for status in (429, 507):
        with pytest.raises(Retryable) as slow:
            coded.judge(answer(status, **{"x-reset": "12", "Retry-After": "1"}))
        assert slow.value.retry_after == 12.0


@pytest.mark.parametrize("header", [{"Retry-After": "999999999"}, {"x-reset": "1e308"}, {"x-reset": "inf"}])
def test_no_vendor_holds_a_cdn_longer_than_an_hour(header: dict[str, str]) -> None:
    # A hostile or broken wait would hold the CDN's rate limiter for the life of a warm process.
    vendor = Coded if "x-reset" in header else Plain
    with pytest.raises(Retryable) as slow:
        vendor("cdn", VendorOptions()).judge(answer(429, **header))
    assert slow.value.retry_after == MAX_RETRY_AFTER == 3600.0


def test_accepted_rejected_and_hints_in_that_order() -> None:
    coded = Coded("cdn", VendorOptions())
    assert coded.judge(answer(201, b'{"id": "p-9"}')) == "id=p-9"
    assert coded.judge(answer(200, b"ok")) == ""  # a 2xx without an id still passes the common rule
    with pytest.raises(Rejected, match="code E42"):
        coded.judge(answer(400, b'{"code": "E42"}'))
    with pytest.raises(Rejected) as forbidden:
        coded.judge(answer(403))
    assert forbidden.value.hint == "grant the purge permission"
    with pytest.raises(Rejected) as other:
        coded.judge(answer(409))
    assert other.value.hint == "see the vendor's code"
    with pytest.raises(Retryable):
        coded.judge(answer(500, b'{"nothing": "here"}'))


def test_url_joins_the_api_base_or_the_option() -> None:
    class Api(Plain):
        api = "https://api.example.com/v1/"

    assert Api("cdn", VendorOptions()).url("/purge") == "https://api.example.com/v1/purge"
    moved = VendorOptions(api_base="https://proxy.example.net/")
    assert Api("cdn", moved).url("/purge") == "https://proxy.example.net/purge"


def test_purges_cost_nothing_unless_a_vendor_bills_per_item() -> None:
    batch = Batch("cdn", "purge", "url", ("https://h/a", "https://h/b"), frozenset({"m1"}))
    assert Plain("cdn", VendorOptions()).cost(batch) == 0


def cloudflare_wait(**headers: str) -> float | None:
    options = CloudflareOptions(zone_id="0" * 32, api_token=Secret("plain", value="token"))
    return Cloudflare("cf", options).wait(answer(429, **headers))


def test_cloudflare_waits_for_retry_after_else_its_ratelimit_reset() -> None:
    assert cloudflare_wait(**{"Retry-After": "4", "Ratelimit": '"default";r=0;t=30'}) == 4.0
    assert cloudflare_wait(Ratelimit='"default";r=0;t=30') == 30.0
    assert cloudflare_wait(Ratelimit='"default";r=0') is None  # no reset given: back off as usual
    assert cloudflare_wait() is None


def fastly_wait(**headers: str) -> float | None:
    return Fastly("fastly", FastlyOptions(api_token=Secret("plain", value="token"))).wait(answer(429, **headers))


def test_fastly_waits_until_its_ratelimit_reset_else_retry_after() -> None:
    reset = fastly_wait(**{"Fastly-RateLimit-Reset": str(int(time.time()) + 60), "Retry-After": "2"})
    assert reset is not None and 58 <= reset <= 60
    assert fastly_wait(**{"Fastly-RateLimit-Reset": "1000"}) == 0.0  # in the past: go now
    assert fastly_wait(**{"Fastly-RateLimit-Reset": "soon", "Retry-After": "2"}) == 2.0
    assert fastly_wait() is None
