"""Secret values in the config: written as references, resolved once per cold start.

Syntax (fixed; every vendor option typed `Secret` accepts it):
    token: {env: CF_API_TOKEN}                      # environment variable
    token: {ssm: /s3purge/cloudflare/token}         # SSM Parameter Store (decrypted)
    token: {secretsmanager: s3purge/cf, key: token} # Secrets Manager (optional JSON field)
    token: "literal"                                # plaintext: works, but deploy warns

A Secret never shows its value in str(), repr(), logs or error messages; call `.reveal()`
only where the value goes onto the wire.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from s3purge.errors import ConfigError

SOURCES = ("env", "ssm", "secretsmanager")
_SHAPE = "a string or one of {env: NAME}, {ssm: NAME}, {secretsmanager: ID, key: FIELD}"


class Secret:
    """A secret value, or a reference to one that `resolve` fills in."""

    __slots__ = ("_value", "key", "name", "source")

    def __init__(self, source: str, name: str = "", key: str | None = None, value: str | None = None):
        self.source, self.name, self.key, self._value = source, name, key, value

    @classmethod
    def parse(cls, raw: Any) -> Secret:
        """A secret as written in the config; ValueError (never echoing the input) when malformed."""
        if isinstance(raw, Secret):
            return raw
        if isinstance(raw, str):
            return cls("plain", value=check_value(raw, "the value"))
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


Fetch = Callable[[Secret], str]


def check_value(value: str, what: str) -> str:
    """A usable secret value: not empty, no surrounding whitespace, no control characters."""
    if not value:
        raise ValueError(f"{what} is empty")
    if value != value.strip():
        raise ValueError(f"{what} starts or ends with whitespace (a pasted newline?)")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise ValueError(f"{what} contains control characters")
    return value


def resolve(secrets: Iterable[Secret], fetchers: Mapping[str, Fetch] | None = None) -> None:
    """Fill in every referenced value; each failure names the reference, never a value."""
    fetchers = {**DEFAULT_FETCHERS, **(fetchers or {})}
    problems = []
    for secret in secrets:
        if secret.resolved:
            continue
        try:
            secret._value = check_value(fetchers[secret.source](secret), f"{secret.describe()}: the value")
        except ConfigError as error:
            problems.append(str(error))
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError("cannot resolve secrets:\n  " + "\n  ".join(problems))


def _from_env(secret: Secret) -> str:
    value = os.environ.get(secret.name)
    if not value:
        raise ConfigError(f"{secret.describe()}: environment variable is not set or empty")
    return value


def _from_ssm(secret: Secret) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = boto3.client("ssm").get_parameter(Name=secret.name, WithDecryption=True)
    except (BotoCoreError, ClientError) as error:
        raise ConfigError(f"{secret.describe()}: {_aws_reason(error)}") from None
    return str(answer["Parameter"]["Value"])


def _from_secretsmanager(secret: Secret) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=secret.name)
    except (BotoCoreError, ClientError) as error:
        raise ConfigError(f"{secret.describe()}: {_aws_reason(error)}") from None
    text = str(answer.get("SecretString", ""))
    if secret.key is None:
        return text
    try:
        value = json.loads(text)[secret.key]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{secret.describe()}: not a JSON object with that key") from None
    return str(value)


def _aws_reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(error).__name__))
    return type(error).__name__


DEFAULT_FETCHERS: dict[str, Fetch] = {
    "env": _from_env,
    "ssm": _from_ssm,
    "secretsmanager": _from_secretsmanager,
    "plain": lambda secret: secret.reveal(),
}
