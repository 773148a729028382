"""Queue URLs given on the command line (worker --queue-url, redrive --dlq-url): checked, and their region used."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import click

from s3purge.entry import output
from s3purge.entry.cli.options import environ

AWS_HOST = re.compile(r"^(?:sqs\.(?P<region>[a-z0-9-]+)|(?P<legacy>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$")
"""sqs.REGION.amazonaws.com, and the older REGION.queue.amazonaws.com (both also in China's .com.cn)."""


def queue_url(option: str, url: str) -> str:
    """The URL, once it looks like a queue URL (scheme, host, /ACCOUNT/NAME); Refused naming the option if not.

    When no AWS region is configured and the URL names one, that region is used for this
    command: the URL says where the queue is, "You must specify a region" would not help.
    """
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https") or not parts.hostname or len(segments) != 2:
        raise output.Refused(
            f"{option} {url!r} is not a queue URL (expected https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
        )
    found = AWS_HOST.match(parts.hostname)
    region = found and (found["region"] or found["legacy"])
    if region and _configured_region() is None:
        click.get_current_context().find_root().with_resource(environ(AWS_DEFAULT_REGION=region))
    return url


def _configured_region() -> str | None:
    import boto3

    return boto3.session.Session().region_name
