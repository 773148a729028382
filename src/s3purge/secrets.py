"""Secret values in the config: written as references, resolved once per cold start.

Syntax (fixed; every vendor option typed `Secret` accepts it):
    token: {env: CF_API_TOKEN}                      # environment variable
    token: {ssm: /s3purge/cloudflare/token}         # SSM Parameter Store (decrypted)
    token: {secretsmanager: s3purge/cf, key: token} # Secrets Manager (optional JSON field)
    token: "literal"                                # plaintext: works, but deploy warns

A Secret never shows its value in str(), repr(), logs or error messages; call `.reveal()`
only where the value goes onto the wire. Values kept in AWS are fetched by secrets_aws.py.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from s3purge import secrets_aws
from s3purge.errors import ConfigError

SOURCES = ("env", "ssm", "secretsmanager")
_SHAPE = "a string or one of {env: NAME}, {ssm: NAME}, {secretsmanager: ID, key: FIELD}"


class Secret:
    """A secret value, or a reference to one that `resolve` fills in."""

    __slots__ = ("_value", "key", "name", "source")
    in_header: ClassVar[bool] = False
    """Sent as a header value, so it must be printable ASCII as well (HeaderSecret)."""

    def __init__(self, source: str, name: str = "", key: str | None = None, value: str | None = None):
        self.source, self.name, self.key, self._value = source, name, key, value

    @classmethod
    def parse(cls, raw: Any) -> Secret:
        """A secret as written in the config; ValueError (never echoing the input) when malformed."""
        if isinstance(raw, Secret):
            return raw
        if isinstance(raw, str):
            return cls("plain", value=check_value(raw, "the value", header=cls.in_header))
        if isinstance(raw, Mapping):
            refs = [s for s in SOURCES if s in raw]
            extra = set(raw) - set(SOURCES) - {"key"}
            if len(refs) == 1 and not extra and isinstance(raw[refs[0]], str):
                key = raw.get("key")
                if key is None or (isinstance(key, str) and refs[0] == "secretsmanager"):
                    if not raw[refs[0]].strip() or (key is not None and not key.strip()):
                        raise ValueError(f"{refs[0]}: the name is empty")
                    return cls(refs[0], raw[refs[0]], key)
        raise ValueError(f"expected {_SHAPE}")  # never echo the input: it may be the secret

    from_config = parse
    """How the config loader reads a field typed Secret."""

    @property
    def resolved(self) -> bool:
        return self._value is not None

    def reveal(self) -> str:
        if self._value is None:
            raise ConfigError(f"secret {self.describe()} was not resolved")
        return self._value

    def describe(self) -> str:
        """Where the value comes from, safe to log."""
        if self.source == "plain":
            return "(inline value)"
        return f"{self.source}:{self.name}" + (f"#{self.key}" if self.key else "")

    def __repr__(self) -> str:
        return f"Secret({self.describe()}, value=***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.source, self.name, self.key, self._value) == (
            other.source,
            other.name,
            other.key,
            other._value,
        )

    def __hash__(self) -> int:
        return hash((self.source, self.name, self.key))


class HeaderSecret(Secret):
    """A secret sent as an HTTP header value: refused unless printable ASCII, at config check when
    inline and at resolve time when referenced, since every request carrying it would fail."""

    __slots__ = ()
    in_header = True


Fetch = Callable[[Secret], str]
"""Fetches one secret's value (the CLI's dry runs use a placeholder); raises ConfigError."""


def check_value(value: str, what: str, header: bool = False) -> str:
    """A usable secret value: not empty, no surrounding whitespace, no control characters; for a
    header, nothing but printable ASCII. Messages name `what`, never the value."""
    if not value:
        raise ValueError(f"{what} is empty")
    if value != value.strip():
        raise ValueError(f"{what} starts or ends with whitespace (a pasted newline?)")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError(f"{what} contains control characters")
    if header and not value.isascii():
        raise ValueError(f"{what} is not printable ASCII (it is sent in a header)")
    return value


def resolve(secrets: Iterable[Secret], fetchers: Mapping[str, Fetch] | None = None) -> None:
    """Fill in every referenced value, or raise one ConfigError naming each reference that failed."""
    problems = fetch(secrets, fetchers)
    if problems:
        raise ConfigError("cannot resolve secrets:\n  " + "\n  ".join(dict.fromkeys(problems.values())))


def fetch(secrets: Iterable[Secret], fetchers: Mapping[str, Fetch] | None = None) -> dict[Secret, str]:
    """Fill in every value that can be fetched; the problem of each secret that cannot (never its value).

    One AWS client per service, SSM parameters ten to a call, all calls at once: a cold start
    waits for the slowest call, not their sum.
    """
    pending: dict[tuple[str, str, str | None], list[Secret]] = {}
    for secret in secrets:
        if not secret.resolved:
            pending.setdefault((secret.source, secret.name, secret.key), []).append(secret)
    if not pending:
        return {}
    refs = [group[0] for group in pending.values()]
    values = _fetch_refs(refs, fetchers or {})
    problems: dict[Secret, str] = {}
    for ref, group in zip(refs, pending.values(), strict=True):
        value = values[ref]
        try:
            if isinstance(value, Exception):
                raise value
            header = any(secret.in_header for secret in group)
            checked = check_value(value, f"{ref.describe()}: the value", header=header)
        except (ConfigError, ValueError) as error:
            problems.update(dict.fromkeys(group, str(error)))
            continue
        for secret in group:
            secret._value = checked
    return problems


Outcome = secrets_aws.Outcome


def _fetch_refs(refs: list[Secret], fetchers: Mapping[str, Fetch]) -> dict[Secret, Outcome]:
    by_source: dict[str, list[Secret]] = {}
    for ref in refs:
        by_source.setdefault(ref.source, []).append(ref)
    found: dict[Secret, Outcome] = {}
    for source, group in list(by_source.items()):
        one = fetchers.get(source) or _LOCAL.get(source)
        if one is not None:
            found.update((ref, _one(one, ref)) for ref in group)
            del by_source[source]
    if by_source:
        found.update(secrets_aws.fetch(by_source))
    return found


def _one(fetcher: Fetch, secret: Secret) -> Outcome:
    try:
        return fetcher(secret)
    except ConfigError as error:
        return error


def _from_env(secret: Secret) -> str:
    value = os.environ.get(secret.name)
    if not value:
        raise ConfigError(f"{secret.describe()}: environment variable is not set or empty")
    return value


_LOCAL: dict[str, Fetch] = {
    "env": _from_env,
    "plain": lambda secret: secret.reveal(),
}


DEFAULT_FETCHERS: dict[str, Fetch] = {**_LOCAL, "ssm": secrets_aws.one, "secretsmanager": secrets_aws.one}
"""Every source, one secret at a time (callers that override some sources start from these)."""


class Vault:
    """A config's secrets, fetched in the background while the cold start goes on.

    A secret that cannot be fetched disables only the CDNs that use it: `unavailable()` names
    them with the reason on every call, and fetching is tried again once `retry_after` seconds
    have passed since the last try (the next invocation after that, on Lambda).
    """

    def __init__(
        self,
        by_cdn: Mapping[str, list[Secret]],
        fetchers: Mapping[str, Fetch] | None = None,
        retry_after: float = 20.0,
    ) -> None:
        self.by_cdn = dict(by_cdn)
        self.fetchers = fetchers
        self.retry_after = retry_after
        self.problems: dict[Secret, str] = {}
        self._tried_at = -float("inf")
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._try()

    def unavailable(self, deadline: float) -> dict[str, str]:
        """CDN -> why it cannot purge now; waits (until `deadline`) for a fetch in progress."""
        with self._lock:
            if self.problems and time.monotonic() - self._tried_at >= self.retry_after:
                self._try()
            worker = self._worker
        if worker is not None:
            worker.join(max(0.0, deadline - time.monotonic()))
        down: dict[str, str] = {}
        for cdn, secrets in self.by_cdn.items():
            reasons = [self.problems[s] for s in secrets if s in self.problems]
            waiting = [s.describe() for s in secrets if not s.resolved and s not in self.problems]
            if reasons or waiting:
                down[cdn] = "; ".join(reasons or [f"secret {', '.join(waiting)} not fetched yet"])
        return down

    def _try(self) -> None:
        """Fetch what is missing: at once when it is local, else in a background thread."""
        self._tried_at = time.monotonic()
        missing = [s for secrets in self.by_cdn.values() for s in secrets if not s.resolved]
        if all(s.source in _LOCAL or s.source in (self.fetchers or {}) for s in missing):
            self.problems = fetch(missing, self.fetchers)
            return
        if self._worker is not None and self._worker.is_alive():
            return
        self._worker = threading.Thread(target=self._fetch, args=(missing,), name="s3purge-secrets", daemon=True)
        self._worker.start()  # unavailable() joins it, bounded by its deadline

    def _fetch(self, missing: list[Secret]) -> None:
        try:
            problems = fetch(missing, self.fetchers)
        except Exception as error:  # noqa: BLE001 - reported per secret, never raised in a thread
            problems = {s: f"{s.describe()}: {type(error).__name__}" for s in missing}
        self.problems = problems
