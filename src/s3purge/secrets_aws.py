"""Secret values kept in AWS: SSM parameters ten to a GetParameters call, Secrets Manager one call
per secret id, every call in flight at once, one boto3 client per service and process.

boto3 is imported only when a config has such a reference (the Lambda runtime provides it). The
secrets are anything shaped like `Ref` (secrets.Secret), so this module does not import that one.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from s3purge.errors import ConfigError

SSM_BATCH = 10
"""Names per GetParameters call (the API's maximum)."""
Outcome = str | ConfigError
"""A secret's value, or why it cannot be had (never echoing a value)."""


class Ref(Protocol):
    """A reference to a secret: which one, and how to name it in a message."""

    source: str
    name: str
    key: str | None

    def describe(self) -> str: ...


R = TypeVar("R", bound=Ref)


def fetch(by_source: Mapping[str, list[R]]) -> dict[R, Outcome]:
    """SSM parameters and Secrets Manager secrets, every call in flight at once."""
    clients = {source: _client(source) for source in by_source}
    jobs: list[Callable[[], dict[R, Outcome]]] = []
    ssm = by_source.get("ssm", [])
    for start in range(0, len(ssm), SSM_BATCH):
        jobs.append(functools.partial(_ssm_batch, clients.get("ssm"), ssm[start : start + SSM_BATCH]))
    by_id: dict[str, list[R]] = {}
    for secret in by_source.get("secretsmanager", []):
        by_id.setdefault(secret.name, []).append(secret)
    jobs += [functools.partial(_secretsmanager, clients.get("secretsmanager"), group) for group in by_id.values()]
    found: dict[R, Outcome] = {}
    if len(jobs) == 1:
        return jobs[0]()
    with ThreadPoolExecutor(min(len(jobs), 8), thread_name_prefix="s3purge-secrets") as pool:
        for result in pool.map(lambda job: job(), jobs):
            found.update(result)
    return found


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(service: str) -> Any:
    """One boto3 client per service and process (creating one costs tens of milliseconds)."""
    with _CLIENTS_LOCK:
        if service not in _CLIENTS:
            import boto3  # only for configs that keep secrets in AWS: the Lambda runtime provides it

            _CLIENTS[service] = boto3.client(service)  # type: ignore[call-overload]
        return _CLIENTS[service]


def _ssm_batch(client: Any, group: list[R]) -> dict[R, Outcome]:
    from botocore.exceptions import BotoCoreError, ClientError

    names = list(dict.fromkeys(secret.name for secret in group))
    try:
        answer = client.get_parameters(Names=names, WithDecryption=True)
    except (BotoCoreError, ClientError) as error:
        return {secret: ConfigError(f"{secret.describe()}: {_aws_reason(error)}") for secret in group}
    values: dict[str, str] = {}
    for parameter in answer.get("Parameters", []):
        value = str(parameter.get("Value", ""))
        selector = str(parameter.get("Selector") or "")
        for name in (parameter.get("Name"), parameter.get("ARN")):
            if name:
                values[str(name)] = values[f"{name}{selector}"] = value
    return {
        secret: values[secret.name]
        if secret.name in values
        else ConfigError(f"{secret.describe()}: ParameterNotFound (or not readable)")
        for secret in group
    }


def _secretsmanager(client: Any, group: list[R]) -> dict[R, Outcome]:
    """Secrets that name one secret id (with different JSON keys): one call."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        text = str(client.get_secret_value(SecretId=group[0].name).get("SecretString", ""))
    except (BotoCoreError, ClientError) as error:
        return {secret: ConfigError(f"{secret.describe()}: {_aws_reason(error)}") for secret in group}
    return {secret: _json_field(secret, text) for secret in group}


def _json_field(secret: R, text: str) -> Outcome:
    if secret.key is None:
        return text
    try:
        return str(json.loads(text)[secret.key])
    except (ValueError, KeyError, TypeError):
        return ConfigError(f"{secret.describe()}: not a JSON object with that key")


def _aws_reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(error).__name__))
    return type(error).__name__


def one(secret: Ref) -> str:
    """One secret's value (DEFAULT_FETCHERS); ConfigError naming it when it cannot be fetched."""
    value = fetch({secret.source: [secret]})[secret]
    if isinstance(value, ConfigError):
        raise value
    return value
