"""One exception tree for everything s3purge reports.

    S3PurgeError
    ├── ConfigError      the config file is wrong (names file, line, field)
    ├── EventError       an incoming event is malformed (names what is wrong)
    └── PurgeError       a vendor call failed
        ├── Retryable    timeouts, connection errors, 5xx, 429 (carries retry_after)
        │   └── Crowded  too many calls in flight for the account (adapt.py lowers its concurrency)
        └── Rejected     the vendor refused the request (carries a hint for the user)
            ├── TooLarge the call carries too much (adapt.py halves the batch and resends)
            └── Unsafe   s3purge refused to build or send it (request boundary, bad key)

Retryable failures are retried; every other PurgeError is permanent: retrying the same
request cannot help. No message or repr built here ever contains a secret value.
"""

from __future__ import annotations


class S3PurgeError(Exception):
    """Base of every error s3purge raises on purpose."""


class ConfigError(S3PurgeError):
    """The configuration cannot be used."""


class EventError(S3PurgeError):
    """An event or message does not have the shape of any supported envelope."""


class PurgeError(S3PurgeError):
    """A vendor call did not succeed."""

    retryable = False


MAX_RETRY_AFTER = 3600.0
"""The longest wait a vendor may ask for: one hour, the longest rate window any vendor documents
(Fastly's hourly API limit). A larger or broken value (a hostile or buggy answer) would otherwise
hold the CDN's rate limiter, and every later purge through it, for the life of a warm process."""


class Retryable(PurgeError):
    """Worth another attempt, after `retry_after` seconds if the vendor said so (at most an hour)."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = None if retry_after is None else min(max(0.0, retry_after), MAX_RETRY_AFTER)


class Rejected(PurgeError):
    """The vendor refused the request; retrying the same request will not help."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(f"{message} ({hint})" if hint else message)
        self.hint = hint


class Crowded(Retryable):
    """The vendor refused the call because too many of the account's calls are in flight."""


class TooLarge(Rejected):
    """The vendor refused the call as carrying too many items or bytes; half of it may pass."""


class Unsafe(Rejected):
    """The request was never sent: it could not be built, or it broke the request boundary."""
