"""N instances, one vendor account: together they stay within the account's limit.

Three processes, each a warm instance handling invocation after invocation (as Lambda runs
them up to the mapping's MaximumConcurrency), purge through one Akamai account whose
emulator enforces the account's object bucket. With S3PURGE_INSTANCES=3 (what the
template sets) each paces at a third of the limit: at most 1% of calls are refused, and
every purge arrives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import serving
from tests.emulators import akamai

INSTANCES = 3
INVOCATIONS = 50
KEYS_PER_INVOCATION = 2
RATE, BURST = 100, 30  # objects per second, bucket size: the account's limit, emulator and config alike

INSTANCE = """
import json, sys, time
from s3purge import config
from s3purge.model import Change
from s3purge.pipeline import Pipeline

pipeline, me = Pipeline(config.load(sys.argv[1])), sys.argv[2]
succeeded = 0
for i in range(int(sys.argv[3])):
    changes = [Change("site", f"{me}/{i}/{j}.html", "created", f"m{i}") for j in range(int(sys.argv[4]))]
    succeeded += pipeline.run(changes, time.monotonic() + 30).ok
print(json.dumps({"succeeded": succeeded}))
"""


def test_instances_share_one_vendor_limit(tmp_path: Path) -> None:
    emulator = akamai.AkamaiEmulator(objects_per_second=RATE, objects_burst=BURST)
    with serving(emulator):
        config = tmp_path / "multicdn.config.yml"
        config.write_text(
            f'cdns:\n  ak: {{vendor: akamai, api_base: "{emulator.url}", rate: {RATE}, burst: {BURST}, '
            f"client_token: {akamai.CLIENT_TOKEN}, client_secret: {akamai.CLIENT_SECRET}, "
            f"access_token: {akamai.ACCESS_TOKEN}}}\n"
            "buckets:\n  site:\n    - {cdn: ak, hosts: [www.example.com]}\n"
        )
        env = {**os.environ, "S3PURGE_INSTANCES": str(INSTANCES)}
        args = [str(config), "", str(INVOCATIONS), str(KEYS_PER_INVOCATION)]
        running = [
            subprocess.Popen(
                [sys.executable, "-c", INSTANCE, *args[:1], f"i{n}", *args[2:]],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(INSTANCES)
        ]
        answers = [json.loads(process.communicate(timeout=60)[0]) for process in running]

    assert answers == [{"succeeded": INVOCATIONS}] * INSTANCES  # every invocation purged everything
    purged = {url for r in emulator.requests for url in r.json()["objects"]}
    expected = {
        f"https://www.example.com/i{n}/{i}/{j}.html"
        for n in range(INSTANCES)
        for i in range(INVOCATIONS)
        for j in range(KEYS_PER_INVOCATION)
    }
    assert purged == expected
    calls = len(emulator.requests)
    assert emulator.throttled_count <= 0.01 * calls, f"{emulator.throttled_count} of {calls} calls refused"
