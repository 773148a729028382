"""Reading a vendor's answer: the common status rule, Retry-After, JSON bodies and hints. Pure.

Vendor modules judge responses through the hooks of `Provider.judge` (base.py); these are
the pieces those hooks share.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any

import httpx

from s3purge.errors import Rejected, Retryable

COMMON_HINTS: Mapping[int, str] = {
    401: "check the credentials and that they may purge this resource",
    403: "check the credentials and that they may purge this resource",
    404: "check api_base and the account/zone/service id in the config",
}
OTHER_HINT = "the vendor rejected the request; see its message"


def judge_status(response: httpx.Response, hint: str = "") -> str:
    """The common rule: 2xx ok; 429 and 5xx retryable; any other status rejected."""
    status = response.status_code
    if response.is_success:
        return ""
    if status == 429 or status >= 500:
        raise Retryable(f"HTTP {status}", retry_after=retry_after(response.headers))
    raise Rejected(f"HTTP {status}: {snippet(response)}", hint or COMMON_HINTS.get(status, OTHER_HINT))


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date); None without one."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _seconds(when.timestamp() - time.time())


def _seconds(value: float) -> float | None:
    # "nan" and "inf" parse as floats; a wait that is not a finite number is no answer at all.
    return max(0.0, value) if math.isfinite(value) else None


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when the body is not one (HTML error pages, lists, nothing)."""
    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        return {}
    return body if isinstance(body, dict) else {}


def snippet(response: httpx.Response) -> str:
    """The start of the answer's text, on one line, for an error message."""
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""
    return " ".join(text.split())[:300]
