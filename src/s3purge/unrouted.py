"""Why a change purges nothing, in words an operator can act on. Pure.

"no route for bucket X; configured: a, b" or "key ... matches no route of bucket X
(prefix public/ ...)". Used by `plan`, and by the Lambda and the worker to log
skipped changes instead of dropping them silently.
"""

from __future__ import annotations

from s3purge.config import Config, Route
from s3purge.mapping import applies
from s3purge.model import Change


def why_unrouted(change: Change, config: Config) -> str | None:
    """None when some route of the change's bucket applies to it, else the reason it does not."""
    routes = config.routes(change.bucket)
    if not routes:
        configured = ", ".join(sorted(config.buckets)) or "none"
        return f"no route for bucket {change.bucket!r}; configured: {configured}"
    if any(applies(route, change) for route in routes):
        return None
    misses = "; ".join(_miss(route, change) for route in routes)
    return f"{change.event} key {change.key!r} matches no route of bucket {change.bucket!r} ({misses})"


def _miss(route: Route, change: Change) -> str:
    """What the route wanted that the change does not have."""
    if change.cdns is not None and route.cdn not in change.cdns:
        return f"{route.cdn}: not asked for (retry of {', '.join(sorted(change.cdns))})"
    if change.event not in route.events:
        return f"{route.cdn}: events {'/'.join(route.events)} only"
    if not change.key.startswith(route.prefix):
        return f"{route.cdn}: prefix {route.prefix!r}"
    return f"{route.cdn}: suffix {route.suffix!r}"
