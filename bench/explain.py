"""Why a target is missed and what would close it, shown in RESULTS.md only for rows that miss.

Keys are `Row.key` values (or their prefix before the first "-"). These are findings from
profiling runs of this benchmark; the numbers in the table are the current run's.
"""

from __future__ import annotations

EXPLAIN: dict[str, str] = {
    "rate-akamai": """
Nothing can be sent before 30,000 changes are planned, and the vendor's bucket is already full
then, so planning is lost time. Profiled on a quiet machine: 0.02 s to admit and read the
changes, 0.28 s to plan them (about 9 µs a change), 0.02-0.03 s from the executor to the first
request's arrival (client made, no TLS, EdgeGrid signing: 3 ms alone; the rest is the main
thread building the other 28 batches while the first call connects). After the first call the
run is at its pacing ceiling: 4.21 s against (30,000 - 9,700) / 4,850 + 0.05 = 4.24 s, paced 3%
under the bucket (`pacing.HEADROOM`: the vendor counts a call when it arrives). The best this
client can do is therefore 4.05 / 4.24 = 0.96 less planning: 0.90 needs the first call within
0.29 s. Quiet machine 0.86-0.89; a loaded one stretches planning (1.45 s seen, 0.71). Time runs
x25 here; in production the same 0.3 s is spread over minutes of draining the bucket.
""",
    "rate-cloudflare": """
What binds a burst of single-file purges is the plan's URL limit (Business: 1,500 URLs a second),
which the emulator enforces in URLs and `plan: business` paces (`Limits.kind_rates`); the API's
window of 1,200 calls per 5 minutes is paced too but 80 calls never fill it. The bucket is full at
the start, so the reference is (8,000 - 1,500) / 1,500 s plus one answer. A miss means the client
paced below the bucket (HEADROOM, 3%) plus time before the first call (planning 8,000 changes).
""",
    "rate-fastly": """
No vendor limit: 500 one-URL calls, 8 in flight, 50 ms each. What is above 50 ms a round is CPU
in two Python processes on shared cores (client 0.30 s for the run, emulator 0.15 s since it
validates with a kept jsonschema validator; 0.55 s before). A miss here is the machine: compare
with Edgecast, the same shape, in the same run.
""",
    "rate-highwinds": """
Highwinds allows 100 URIs in any 60 s (a sliding window; s3purge paces it with
`pacing.SlidingWindow`). The login and account look-up (two round trips, 100 ms here) happen in
`Provider.prepare`, before the first call takes its slot, so they no longer push the first purge
late in the vendor's window (before: 0.78 and 1 call of 6 refused). What remains is HEADROOM
(3% of each window) and one 50 ms answer; a miss now means arrival jitter of more than 3% of the
1 s scaled window (30 ms), i.e. a loaded machine; its 429's Retry-After is honoured.
""",
    "429-highwinds": "See the Highwinds throughput row.",
    "latency": """
Of the overhead above the slowest CDN's 100 ms (profiled): about 3 ms from the event to the
request on the wire (thread hand-off, EdgeGrid signing, loopback), about 2 ms the Akamai
emulator's own signature check and schema validation after its 100 ms (a real vendor also
takes time to answer), about 1 ms back to the handler's return. The p95 tail is scheduling
noise on 2 shared cores (five worker threads, the emulator process, other tenants): it moves
between 1.09 and 1.12 from run to run. Nothing in the client serialises the five calls.
""",
    "import": """
The handler module imports only logging and the event parser; the config, vendors, httpx and
tenacity come with the cold start inside the first invocation (its row measures them). If this
misses, look for a module-level import added to s3purge/entry/aws_lambda.py or s3purge/events.py.
""",
    "first": """
What a first invocation from the zip costs beyond `import boto3`'s share of the same stdlib
modules, in order (import profile row): httpx + httpcore + h11 (about a third: h11 compiles its
grammar at import), PyYAML (pure Python, its C extension is not shipped), msgspec, tenacity and
s3purge's own modules; the HTTP client is made at the first call and plain-http configs never
load the CA bundle. What remains is mostly httpx's own import: replacing it is what issue #15
ruled out.
""",
    "cpu": """
Per change (4.2 URLs): reading the notification is one typed msgspec decode (about 0.9x
json.loads); the rest is Python per target: building its URL, the request-boundary check on it
(url_problem, regex shortcuts for plain URLs), one admission, one identity and about three dict
lookups through choose, dedupe and packing. Change, Target and Admission are msgspec Structs
with gc=False, so the collector no longer walks what a burst holds (it took a quarter of the
time when they were dataclasses).
""",
    "escalation": """
With both rules on but not firing, escalate.py counts changed URLs per directory (one slice and
one dict update per URL) and plan.py builds the escalated dict; kept targets keep their source
records as they are. That counting is the floor of the rule: it has to see every URL.
""",
    "plan-memory": """
Planning holds, per target: the Target and its URL (most of it), one (target, source) pair, an
entry in the dedupe and sources dicts; a target of one source shares that source's 1-tuple, and
sources that route alike share one frozenset of CDNs. The peak is while deduplicating, when the
admitted pairs and the dicts being filled are alive together.
""",
    "zip": """
The zip holds s3purge, httpx/httpcore/h11, idna, certifi, msgspec, PyYAML (pure Python) and
tenacity, each as source and .pyc. Left out: what Lambda provides (boto3 and its
dependencies), click and tqdm (CLI only), anyio and typing-extensions (httpx's async side),
PyYAML's C extension. Shipping only .pyc would save about a third more, at the price of
tracebacks without source lines.
""",
}

NOTES: dict[str, list[str]] = {
    "calls": [
        "Calls: the minimum counts distinct cache objects by vendor facts (vendor-apis.md): one "
        "object across schemes for Akamai, Fastly, Edgecast purges and self-hosted caches, per "
        "scheme for Cloudflare (zone-dependent) and Highwinds (undocumented), one path for all "
        "hosts on CloudFront; Fastly URL purges are one URL per call by API. The planner "
        "deduplicates by each vendor's `identity()` of a target, so this is what it packs.",
    ],
    "throughput": [
        "Throughput: time runs faster per vendor (Akamai x25, Highwinds x60) with bucket sizes as "
        "documented; Cloudflare runs in real time against its Business plan's single-file limit "
        "(1,500 URLs/s); the 50 ms answer time is not scaled. A Retry-After in whole seconds "
        "(Cloudflare) weighs more here than in production. A refused call's "
        "tokens are given back and the Retry-After is waited once, by the CDN's limiter, for "
        "every thread of that CDN.",
    ],
    "latency": [
        "Latency: invocations come 4 a second: Cloudflare's API allows 4 calls/s and s3purge "
        "paces to it, so back-to-back runs would time the pacing (250 ms) rather than the calls.",
    ],
    "coldstart": [
        "Cold start: the package ships .pyc compiled by the runtime's Python (unchecked-hash) and "
        "Lambda's /var/task is read-only; the 'no .pyc' row shows what every cold start would "
        "compile without them. The first-invocation rows run on this machine's architecture and "
        "Python (the zip row is the arm64 / Python 3.12 package deploy ships). Issue #15's "
        "figures before this work (same benchmark, pydantic, no .pyc, CA bundle loaded at cold "
        "start): handler import 1.27, first invocation 2.92 (1.45 with .pyc), zip 4.05 MB.",
    ],
    "cpu": [
        "CPU: times are the process's CPU time (time.process_time), steadier than wall time on a "
        "shared machine. Issue #15's figures before this work: 14-16x json.loads per change "
        "(120 µs), escalation with no rule firing 2.2-2.7x plain planning, 2.5 KiB per change "
        "(2.7 KiB by this row's own measure); main just before the planning work (spellings, "
        "admission, choose and tags added since): 18.9x, 1.23, 3,262 B. The json.loads reference "
        "drops each result at once, as it always did.",
    ],
    "memory": [
        "Memory: peak RSS is read from /proc/self/status VmHWM: Linux's getrusage() ru_maxrss "
        "carries the parent's peak across fork+exec, which made a small child look as big as the "
        "benchmark process. Cloudflare and Akamai run unpaced here (rate overrides in the config).",
    ],
}
