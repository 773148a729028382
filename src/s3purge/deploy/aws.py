"""The AWS session deploy acts through, and one error message per failed AWS call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from s3purge.deploy import DeployError

Say = Callable[[str], None]
"""Where deploy steps report progress to the user (the CLI's `say`)."""


@dataclass
class Aws:
    """One boto3 session, the account and partition it acts in."""

    session: Any
    account: str
    partition: str

    @classmethod
    def connect(cls, region: str | None = None) -> Aws:
        import boto3

        session = boto3.session.Session(region_name=region)
        if not session.region_name:
            raise DeployError("no AWS region: pass --region or set AWS_REGION / a profile region")
        with doing("identify the AWS account (sts:GetCallerIdentity)"):
            who = session.client("sts").get_caller_identity()
        return cls(session, str(who["Account"]), str(who["Arn"]).split(":")[1])

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:{resource}"


@contextmanager
def doing(what: str) -> Iterator[None]:
    """Turn any AWS error inside the block into one DeployError about `what`."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from botocore.parsers import ResponseParserError

    try:
        yield
    except NoCredentialsError:
        raise DeployError(f"cannot {what}: no AWS credentials (configure a profile or AWS_* variables)") from None
    except ClientError as error:
        info = error.response.get("Error", {})
        code, message = info.get("Code", "Error"), info.get("Message", "")
        hint = " (see docs/deploy.md for the permissions deploy needs)" if "AccessDenied" in code else ""
        raise DeployError(f"cannot {what}: {code}: {message}{hint}") from None
    except (BotoCoreError, ResponseParserError) as error:  # the latter: an answer botocore cannot read
        raise DeployError(f"cannot {what}: {error}") from None
