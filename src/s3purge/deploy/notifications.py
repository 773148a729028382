"""Bucket notifications: merged into the bucket's configuration, never replacing it.

The bucket belongs to the user, so it is not a CloudFormation resource here. Deploy reads
the bucket's configuration, drops only entries whose Id is ours, adds ours, and writes
the whole configuration back: every queue, topic, function and EventBridge setting of
anyone else survives. Destroy does the same without adding.

S3 has no conditional write for this configuration, so `apply` reads it right before
writing, reads it again afterwards, and merges again if someone else changed it meanwhile
(a writer holding an older copy may have dropped our entry).
"""

from __future__ import annotations

from collections.abc import Iterable
from os.path import commonprefix
from typing import Any

from s3purge.config import Route
from s3purge.deploy import DeployError, Trigger

KINDS = {
    "QueueConfigurations": "QueueArn",
    "TopicConfigurations": "TopicArn",
    "LambdaFunctionConfigurations": "LambdaFunctionArn",
}
"""Notification list -> the field naming its target."""
EVENTS = {"created": "s3:ObjectCreated:*", "removed": "s3:ObjectRemoved:*"}


def our_id(stack: str) -> str:
    """The Id of our entry; a stack name never contains ':' so no other stack's Id matches."""
    return f"s3purge:{stack}"


def is_ours(entry: dict[str, Any], stack: str) -> bool:
    entry_id = str(entry.get("Id", ""))
    return entry_id == our_id(stack) or entry_id.startswith(our_id(stack) + ":")


def entry_for(stack: str, trigger: Trigger, target_arn: str, routes: Iterable[Route]) -> tuple[str, dict[str, Any]]:
    """Our one entry for a bucket: (list name, entry) with events and filters from its routes."""
    routes = list(routes)
    kinds: set[str] = {kind for route in routes for kind in route.events} or set(EVENTS)
    entry: dict[str, Any] = {"Id": our_id(stack), "Events": [EVENTS[k] for k in sorted(kinds)]}
    rules = _filter_rules(routes)
    if rules:
        entry["Filter"] = {"Key": {"FilterRules": rules}}
    if trigger == "sqs":
        return "QueueConfigurations", {**entry, "QueueArn": target_arn}
    return "LambdaFunctionConfigurations", {**entry, "LambdaFunctionArn": target_arn}


def _filter_rules(routes: list[Route]) -> list[dict[str, str]]:
    # S3 allows one prefix and one suffix per entry, so the entry covers every route:
    # the longest prefix (suffix) all routes share; any route without one means none.
    # Character by character on purpose (RUF071): S3 matches key prefixes so, not by path segment.
    prefix = commonprefix([r.prefix for r in routes])  # noqa: RUF071
    suffix = commonprefix([r.suffix[::-1] for r in routes])[::-1]  # noqa: RUF071
    rules = []
    if prefix:
        rules.append({"Name": "prefix", "Value": prefix})
    if suffix:
        rules.append({"Name": "suffix", "Value": suffix})
    return rules


def merged(current: dict[str, Any], stack: str, ours: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
    """`current` without our old entry, plus `ours`; everything else kept as it was."""
    result: dict[str, Any] = {}
    for kind in KINDS:
        kept = [e for e in current.get(kind, []) if not is_ours(e, stack)]
        if ours is not None and ours[0] == kind:
            kept.append(ours[1])
        if kept:
            result[kind] = kept
    if "EventBridgeConfiguration" in current:
        result["EventBridgeConfiguration"] = current["EventBridgeConfiguration"]
    return result


def conflicts(current: dict[str, Any], stack: str, ours: tuple[str, dict[str, Any]]) -> list[str]:
    """Others' entries S3 would refuse next to ours: a shared event type on overlapping keys."""
    found = []
    for kind in KINDS:
        for entry in current.get(kind, []):
            if not is_ours(entry, stack) and _events_overlap(entry, ours[1]) and _keys_overlap(entry, ours[1]):
                found.append(describe(kind, entry))
    return found


def _events_overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def covers(x: str, y: str) -> bool:
        return x == y or (x.endswith(":*") and y.startswith(x[:-1]))

    return any(covers(x, y) or covers(y, x) for x in a.get("Events", []) for y in b.get("Events", []))


def _keys_overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two filters overlap when one's prefix starts the other's and one's suffix ends the other's."""
    pa, sa = _rule(a, "prefix"), _rule(a, "suffix")
    pb, sb = _rule(b, "prefix"), _rule(b, "suffix")
    return (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa))


def _rule(entry: dict[str, Any], name: str) -> str:
    rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return next((str(r["Value"]) for r in rules if str(r["Name"]).lower() == name), "")


def read(s3: Any, bucket: str, account: str) -> dict[str, Any]:
    """The bucket's notification configuration, without the response metadata."""
    answer = s3.get_bucket_notification_configuration(Bucket=bucket, ExpectedBucketOwner=account)
    return {k: v for k, v in answer.items() if k == "EventBridgeConfiguration" or k in KINDS}


def write(s3: Any, bucket: str, account: str, configuration: dict[str, Any]) -> None:
    s3.put_bucket_notification_configuration(
        Bucket=bucket, ExpectedBucketOwner=account, NotificationConfiguration=configuration
    )


def apply(
    s3: Any, bucket: str, account: str, stack: str, ours: tuple[str, dict[str, Any]] | None, *, attempts: int = 5
) -> list[str]:
    """Merge `ours` (None: remove ours) into the bucket's configuration as it is now; check it held.

    Returns what happened besides our write, e.g. that another writer's change was merged.
    """
    notes: list[str] = []
    for _ in range(attempts):
        current = read(s3, bucket, account)
        wanted = merged(current, stack, ours)
        if wanted == current:
            return notes
        write(s3, bucket, account, wanted)
        after = read(s3, bucket, account)
        lost = sorted(_ids(wanted) - _ids(after) - {our_id(stack)})
        if not lost and _ours_as_wanted(after, stack, ours):
            return notes
        changed = f"entries {', '.join(lost)} gone" if lost else "our entry overwritten"
        notes.append(f"someone else changed the configuration while s3purge wrote it ({changed}); merged again")
    raise DeployError(
        f"bucket {bucket}: its notification configuration kept changing while s3purge wrote it; run the command again"
    )


def _ids(configuration: dict[str, Any]) -> set[str]:
    return {str(e.get("Id")) for kind in KINDS for e in configuration.get(kind, [])}


def _ours_as_wanted(configuration: dict[str, Any], stack: str, ours: tuple[str, dict[str, Any]] | None) -> bool:
    """Our entry is there (in the right list) or, when removing, gone. By Id: S3 may normalise an entry."""
    found = [(kind, e["Id"]) for kind in KINDS for e in configuration.get(kind, []) if is_ours(e, stack)]
    return found == ([] if ours is None else [(ours[0], ours[1]["Id"])])


def describe(kind: str, entry: dict[str, Any]) -> str:
    """One line about an entry, for the deploy output."""
    target = entry.get(KINDS[kind], "?")
    events = ", ".join(e.removeprefix("s3:").removesuffix(":*") for e in entry.get("Events", []))
    rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    where = "".join(f"; {r['Name'].lower()} {r['Value']!r}" for r in rules)
    return f"{entry.get('Id')} -> {target} ({events}{where})"


def others(configuration: dict[str, Any], stack: str) -> int:
    """How many entries in the configuration are someone else's."""
    count = sum(1 for kind in KINDS for e in configuration.get(kind, []) if not is_ours(e, stack))
    return count + (1 if "EventBridgeConfiguration" in configuration else 0)
