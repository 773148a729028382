"""Why a target is missed and what would close it, shown in RESULTS.md only for rows that miss.

Keys are `Row.key` values (or their prefix before the first "-"). These are findings from
profiling runs of this benchmark; the numbers in the table are the current run's.
"""

from __future__ import annotations

_RATE = """
The client's token bucket and the vendor's run at the same rate with no headroom. The vendor
counts a call when it arrives (here after the emulator's 50 ms), the client when it sends, so a
call that arrives a few ms earlier relative to the one before finds the vendor's bucket empty:
429. Each 429 then costs more than the vendor asked for, in `src/s3purge/execute.py`:
(1) the refused call's tokens were taken from the client's bucket and are taken again on the
retry, although the vendor did not count it: a whole call's worth of refill (Highwinds: a full
window, 60 s in production); (2) tenacity sleeps the Retry-After and `TokenBucket.pause()` also
pushes the bucket below zero by Retry-After x rate, which the retry's `acquire` then waits out.
Cloudflare's Retry-After is in whole seconds (at least 1 s: 4 calls at 4/s, 20 in this x5 run).
The time before the first call is planning (see the CPU row) and, for Akamai, importing
edgegrid-python on the first signature.

Proposed fix (tried on a copy of execute.py: Cloudflare 0.72 -> 0.91 with 0 of 80 calls
refused; Akamai 1 -> 0 refused): pace 3% under the declared rate and burst, and on a refusal
with Retry-After give the call's tokens back while holding everyone until then:

```python
# TokenBucket.__init__
self.rate = Rate(rate.per_second * 0.97, rate.burst * 0.97, rate.unit)  # arrival jitter headroom
self._tokens = self.rate.burst

def refused(self, cost: float, seconds: float) -> None:  # replaces pause()
    with self._lock:
        self._refill()
        self._tokens = min(self._tokens + cost, cost - seconds * self.rate.per_second)

# Executor._attempt
if bucket is not None and isinstance(error, Retryable) and error.retry_after is not None:
    bucket.refused(cost, error.retry_after)
```

Highwinds keeps some 429s after that: its bucket token is taken before the auth flow logs in
and looks up the account (two more round trips), so the first purge arrives late and the
second, sent one window after the first token, arrives less than a window after it. Closing
that needs the login done before the token is taken (e.g. a provider `prepare()` the
executor calls once per CDN before pacing starts), or more headroom for sliding windows.
"""

EXPLAIN: dict[str, str] = {
    "calls-cloudfront": """
`plan.pack` fills CloudFront batches with up to 3,000 URL targets, and only then does the
provider turn them into paths (`CloudFront.paths` drops scheme and host). With three hosts a
batch of 3,000 URLs carries far fewer distinct paths, so a 10,000-key burst takes more calls
than paths / 3,000 (paths paid stay right: duplicates only straddle batch boundaries). Close it
by packing on the cache identity: a provider hook such as `cache_key(value) -> str` (default:
the https form when `scheme_agnostic`, else the value; CloudFront: its invalidation path) that
`plan` uses to deduplicate targets before packing, replacing the scheme-only `_https`.
CloudFront also caps paths *in progress* at 3,000 per distribution, so bursts this large meet
TooManyInvalidationsInProgress regardless; a prefix threshold is the real answer there.
""",
    "calls-edgecast": """
Edgecast purges http and https with one call (vendor-apis.md, Edgecast: "a purge hits ...
both http and https"), but `Edgecast.scheme_agnostic` is False because a *load* is per scheme,
so both schemes' URLs are sent: twice the calls when a route has `schemes: both`. Close it:
`Edgecast.scheme_agnostic -> True`, and in `plan.plan` merge schemes only for actions that are
not `load` (`provider.scheme_agnostic and target.kind == "url" and target.action != "load"`),
since a prefetch is per scheme on every vendor. Edgecast also has `PUT .../edge/bulkpurge`
(a list of MediaPaths), which `max_items = 1` leaves unused.
""",
    "rate": _RATE,
    "429": _RATE,
    "rate-fastly": """
Fastly does not limit URL purges; the ceiling here is the client's own pool (8 calls in flight
x 50 ms). The shortfall is CPU: client and emulators are Python on 2 shared cores, and the
Fastly emulator validates every answer against its spec with jsonschema. Not a client defect.
""",
    "rate-edgecast": """
Edgecast's limit is 50 purges in flight (scaled to 8 here); the ceiling is 8 calls x 50 ms.
Any shortfall is CPU on this 2-core machine (client and emulator both Python).
""",
    "latency": """
Of the overhead above the slowest CDN's 100 ms (profiled): about 3 ms from the event to the
request on the wire (thread hand-off, EdgeGrid signing, loopback), about 2 ms the Akamai
emulator's own signature check and schema validation after its 100 ms (a real vendor also
takes time to answer), about 1 ms back to the handler's return. The p95 tail is scheduling noise
on 2 shared cores (five worker threads, the emulator process, other tenants). On Lambda the
network round trip dominates; nothing in the client serialises the five calls.
""",
    "import": """
The handler's import is dominated by its dependencies: pydantic (and building the config
models), httpx (which also imports click through `httpx._main` when click is installed, as it
is in the package for the CLI), importlib.metadata (imported by `s3purge.providers` for entry
points, needed only for third-party vendors), PyYAML, s3purge.legacy, tenacity; see the import
profile row. pydantic + httpx + yaml + tenacity alone take more than half of boto3's time, so
0.50 is out of reach without replacing pydantic (config validation) or httpx (e.g. with
urllib3/botocore's HTTP, already in the runtime). Within reach, about 40 ms: import
`entry_points` inside `known_vendors()`/`provider_class()` (~15 ms); import `s3purge.legacy`
only when a config looks legacy (~10 ms); leave click out of the Lambda package (CLI only)
(~10 ms); replace aws-lambda-powertools, used only as a JSON log formatter, with a stdlib
`logging.Formatter` of ~20 lines (saves its import at the first call, see the "import +
first-call setup" row, and 0.9 MB of the zip).
""",
    "zip": """
The zip's largest parts, compressed: pydantic_core 2.0 MB, aws-lambda-powertools 0.93 MB,
PyYAML 0.81 MB (mostly its libyaml C extension), pydantic 0.48 MB, certifi, anyio, click
0.12 MB each. Close it: replace Powertools (only its JSON log formatter is used) with a small
stdlib formatter in `s3purge/logs.py` (-0.93 MB, to about 4.2 MB); leave click out of the Lambda
package (`IN_LAMBDA_RUNTIME`-style exclusion in deploy/package.py; -0.12 MB); compress at
level 9 instead of 6 (a few %).
""",
    "memory": """
Plan memory: `plan._escalated` runs `escalate()` for every CDN even when no threshold is
configured, which builds a `{target}` set per target and a union copy of every target's
source set: about 22 MB at 10,000 records (tried: peak 124 -> 102 MB). Close it in
`plan._escalated`: for a CDN whose `escalation.prefix` and `.everything` are both None,
`merged.update((t, sources[t]) for t in group)` and skip `escalate()`.
""",
}

NOTES: dict[str, list[str]] = {
    "calls": [
        "Calls: the minimum counts distinct cache objects by vendor facts (vendor-apis.md): one "
        "object across schemes for Akamai, Fastly, Edgecast and self-hosted caches, per scheme for "
        "Cloudflare (zone-dependent) and Highwinds (undocumented), one path for all hosts on "
        "CloudFront; Fastly URL purges are one URL per call by API.",
    ],
    "throughput": [
        "Throughput: time runs faster per vendor (Akamai x25, Cloudflare x5, Highwinds x60) with "
        "bucket sizes as documented; the 50 ms answer time is not scaled. A Retry-After in whole "
        "seconds (Cloudflare) therefore weighs more here than in production. The emulator base "
        "writes headers and body in two sends; with Nagle's algorithm that added 40 ms per answer "
        "(delayed ACK), so the bench sets TCP_NODELAY in the emulator process "
        "(tests/emulators/base.py `_Handler.disable_nagle_algorithm = True` would fix it for "
        "the tests too).",
    ],
    "latency": [
        "Latency: invocations come 4 a second: Cloudflare's API allows 4 calls/s and s3purge "
        "paces to it, so back-to-back runs would time the pacing (250 ms) rather than the calls.",
    ],
    "coldstart": [
        "Cold start: the package ships no .pyc (`--no-compile`, `__pycache__` skipped) and "
        "Lambda's /var/task is read-only, so every cold start compiles s3purge and its "
        "dependencies from source: the 'from the zip, no .pyc' row. Shipping .pyc files compiled "
        "by the runtime's Python version (3.12; build in a matching interpreter or image, "
        "`compileall --invalidation-mode unchecked-hash`) would remove that.",
    ],
    "memory": [
        "Memory: peak RSS is read from /proc/self/status VmHWM: Linux's getrusage() ru_maxrss "
        "carries the parent's peak across fork+exec, which made a small child look as big as the "
        "benchmark process. Cloudflare and Akamai run unpaced here (rate overrides in the config).",
    ],
    "cpu": [
        "CPU: about 60% of plan time is `escalate()`'s prefix bookkeeping (`urlsplit` per target) "
        "although no escalation threshold is configured; the memory fix above (skip escalate() "
        "for CDNs without thresholds) removes it too.",
    ],
}
