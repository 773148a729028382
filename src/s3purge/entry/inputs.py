"""What `replay` and `plan --event` read: saved events in any shape, or an S3 listing.

- a JSON document: any envelope `events.changes_in` knows (S3, SNS, SQS, EventBridge,
  s3purge retry), a list of them, or `aws sqs receive-message` output ({"Messages": [...]})
- JSON Lines: one such document (or one SQS message) per line
- `-`: the same from stdin
- s3://BUCKET/PREFIX: every object listed under the prefix, as "created" changes
Every problem names the file (and line): `events.jsonl:3: Records[0].s3: missing`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from s3purge.errors import EventError
from s3purge.events import changes_in
from s3purge.model import Change

S3 = "s3://"


def read_changes(sources: Iterable[str]) -> list[Change]:
    """Every change of every source, in order; EventError naming the source on the first problem."""
    changes: list[Change] = []
    for source in sources:
        changes.extend(_listed(source) if source.startswith(S3) else _read(source))
    return changes


def _read(source: str) -> Iterator[Change]:
    name = "stdin" if source == "-" else Path(source).name
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise EventError(f"{source}: cannot read ({getattr(error, 'strerror', None) or error})") from None
    try:
        doc = json.loads(text)
    except ValueError:
        yield from _lines(text, source, name)
        return
    yield from _document(doc, source, name)


def _lines(text: str, source: str, name: str) -> Iterator[Change]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as error:
            raise EventError(f"{source}:{number}: neither JSON nor JSON Lines ({error})") from None
        yield from _document(doc, f"{source}:{number}", f"{name}:{number}")


def _document(doc: Any, where: str, name: str) -> Iterator[Change]:
    try:
        if isinstance(doc, list):
            for index, item in enumerate(doc):
                yield from _one(item, f"{name}[{index}]")
        elif isinstance(doc, Mapping) and isinstance(doc.get("Messages"), list):  # aws sqs receive-message
            for item in doc["Messages"]:
                yield from _one(item, name)
        else:
            yield from _one(doc, name)
    except EventError as error:
        raise EventError(f"{where}: {error}") from None


def _one(doc: Any, name: str) -> Iterator[Change]:
    if isinstance(doc, Mapping) and "Body" in doc and "MessageId" in doc:  # one SQS message
        yield from changes_in(doc["Body"], str(doc["MessageId"]), "Body")
    else:
        yield from changes_in(doc, name)


def _listed(source: str) -> Iterator[Change]:
    """s3://bucket/prefix: each object listed is a change, as if it had just been written."""
    bucket, _, prefix = source.removeprefix(S3).partition("/")
    if not bucket:
        raise EventError(f"{source}: expected s3://BUCKET/PREFIX")
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            yield Change(bucket, item["Key"], "created", source=f"{S3}{bucket}/{item['Key']}", etag=item.get("ETag"))
