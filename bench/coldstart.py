"""Benchmark 4: cold start and package size (the rows of issue #15).

- Handler import: a fresh interpreter importing the Lambda handler module, against one
  importing boto3 (the SDK every Python Lambda may use for free), median of 20 each,
  interleaved so both see the same noise: from this environment (reported), and from the
  zip as below (the target). The handler module defers config, vendors and HTTP to its
  cold start, inside the first invocation, which the next row measures whole.
- First invocation from the zip: the package deploy builds (s3purge.deploy.package), for this
  machine's architecture and Python, unpacked and run as Lambda runs it: a fresh interpreter
  (-I -S -B: nothing written, as /var/task is read-only; only the package and what the runtime
  provides, boto3 and its dependencies, on the path) that imports the handler and answers one
  SQS event whose change is purged on a local HTTP endpoint. Reference: `import boto3` with the
  same path and flags. Interleaved, median of 9; with the zip's .pyc (what deploy ships) and,
  for comparison, without them (every module compiled at each cold start). The CPU time of
  each (user + system) is shown too: on a shared, loaded machine it is steadier than wall time.
- Zip size: what `deploy` ships by default (arm64, Python 3.12).
- Import profile: the ten top-level packages whose import costs most in that first
  invocation from the zip (`-X importtime`, cumulative, median of 3).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row, Section, at_most, median

RUNS = 20
ZIP_RUNS = 9
HANDLER = "import s3purge.entry.aws_lambda"
BOTO3 = "import boto3"
MB = 1_000_000
ZIP_LIMIT_MB = 2.0
CONFIG = """\
cdns:
  edge: {{vendor: http, endpoints: ["{url}"]}}
buckets:
  site:
    - {{cdn: edge, hosts: [www.example.com]}}
"""

COLD_START = """
import os
from s3purge.entry import aws_lambda
class Context:
    def get_remaining_time_in_millis(self): return 60_000
aws_lambda.handler({"Service": "Amazon S3", "Event": "s3:TestEvent"}, Context())
"""
"""Import, then the first invocation's setup (config, secrets, logging) on an S3 test event (no calls)."""

FIRST_INVOCATION = """
import json, sys
sys.path[:0] = sys.argv[1:3]
from s3purge.entry.aws_lambda import handler
class Context:
    def get_remaining_time_in_millis(self): return 30_000
record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
          "s3": {"bucket": {"name": "site"}, "object": {"key": "a.html"}}}
event = {"Records": [{"messageId": "m", "body": json.dumps({"Records": [record]}), "eventSource": "aws:sqs",
                      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q"}]}
assert handler(event, Context()) == {"batchItemFailures": []}
"""
"""What Lambda's runtime does on a cold start: import the handler, call it once (one purge)."""
BOTO3_FROM_ZIP = "import sys; sys.path[:0] = sys.argv[1:3]; import boto3"
HANDLER_FROM_ZIP = "import sys; sys.path[:0] = sys.argv[1:3]; import s3purge.entry.aws_lambda"


def wall(code: str, *flags: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> float:
    return timed(code, *flags, env=env, args=args)[0]


def timed(code: str, *flags: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of a fresh interpreter running `code`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, *flags, "-c", code, *args], check=True, env=env, stdout=subprocess.DEVNULL)
    spent = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return spent, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def run() -> Section:
    section = Section()
    boto3 = _handler_import(section)
    _first_call_setup(section, boto3)
    _zip_size(section)
    _from_the_zip(section)
    return section


def _handler_import(section: Section) -> float:
    """From this environment (a venv with the dev tools: httpx imports click and pygments here)."""
    for code in (HANDLER, BOTO3, "pass"):
        wall(code)  # write .pyc files and warm the page cache for all three alike
    times: dict[str, list[float]] = {HANDLER: [], BOTO3: [], "pass": []}
    for _ in range(RUNS):
        for code, spent in times.items():
            spent.append(wall(code))
    handler, boto3, bare = (median(times[c]) for c in (HANDLER, BOTO3, "pass"))
    measured = f"{handler * 1000:.0f} ms vs {boto3 * 1000:.0f} ms (bare interpreter {bare * 1000:.0f} ms), this venv"
    section.rows.append(Row("4 cold import ÷ boto3", "handler module", measured, handler / boto3, "report", None))
    net = f"{(handler - bare) * 1000:.0f} ms vs {(boto3 - bare) * 1000:.0f} ms"
    row = Row("4 cold import ÷ boto3", "net of interpreter", net, (handler - bare) / (boto3 - bare), "report", None)
    section.rows.append(row)
    section.data["imports"] = {"handler": times[HANDLER], "boto3": times[BOTO3], "interpreter": times["pass"]}
    return boto3


def _first_call_setup(section: Section, boto3: float) -> None:
    with tempfile.TemporaryDirectory() as root:
        Path(root, "multicdn.config.yml").write_text(CONFIG.format(url="http://127.0.0.1:6081"))
        env = {**os.environ, "LAMBDA_TASK_ROOT": root, "debug": "false"}
        env.pop("config_file", None)
        cold = median([wall(COLD_START, env=env) for _ in range(RUNS // 2)])
    measured = f"{cold * 1000:.0f} ms (config, secrets, JSON logging; no vendor call)"
    section.rows.append(
        Row("4 cold import ÷ boto3", "import + first-call setup", measured, cold / boto3, "report", None)
    )


def _zip_size(section: Section) -> None:
    from s3purge.deploy.package import build

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "multicdn.config.yml")
        config.write_text(CONFIG.format(url="http://127.0.0.1:6081"))
        try:
            package = build(config, Path(tmp, "arm64.zip"), arch="arm64", runtime="python3.12")
        except Exception as error:  # noqa: BLE001 - no index for pip: report it, go on
            section.rows.append(Row("4 Lambda zip", "arm64, py3.12", f"not built: {error}", None, "≤ 2 MB", False))
            return
    size = package.size / MB
    measured = f"{size:.2f} MB zipped, {package.unzipped / MB:.1f} MB unzipped, {package.files} files"
    ratio = size / ZIP_LIMIT_MB
    section.rows.append(
        Row("4 Lambda zip ÷ 2 MB", "arm64, py3.12", measured, ratio, "≤ 1.00", at_most(ratio, 1.0), key="zip")
    )
    section.data["zip"] = package.size


def _from_the_zip(section: Section) -> None:
    """Handler import and first invocation from the unpacked package, ÷ import boto3 there."""
    from tests.emulators.base import Emulator

    from bench.package import runtime_dir, unpack
    from s3purge.deploy import package as packages
    from s3purge.deploy import wheels

    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    arch = "x86_64" if os.uname().machine == "x86_64" else "arm64"
    with tempfile.TemporaryDirectory() as scratch, Emulator() as cache:
        tmp = Path(scratch)
        config = tmp / "multicdn.config.yml"
        config.write_text(CONFIG.format(url=cache.url))
        deps = wheels.installed_dependencies(tmp / "deps")
        entries = [*packages._tree(deps), *packages._source(), (packages.CONFIG_NAME, config)]
        zips = {
            "with .pyc": packages.build(config, tmp / "shipped.zip", arch=arch, runtime=runtime, dependencies=deps),
            "no .pyc": packages.write_zip(tmp / "plain.zip", entries, compiled=False),
        }
        paths = runtime_dir(tmp / "runtime")
        roots = {name: unpack(z.path, tmp / f"task-{i}") for i, (name, z) in enumerate(zips.items())}
        shipped = str(roots["with .pyc"])
        runs = {
            "boto3": (BOTO3_FROM_ZIP, shipped),
            "handler": (HANDLER_FROM_ZIP, shipped),
            **{name: (FIRST_INVOCATION, str(root)) for name, root in roots.items()},
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(ZIP_RUNS):
            for name, (code, root) in runs.items():
                env = {"LAMBDA_TASK_ROOT": root}
                times[name].append(timed(code, "-I", "-S", "-B", env=env, args=(root, str(paths))))
        cost = {name: (median([w for w, _ in t]), median([c for _, c in t])) for name, t in times.items()}
        boto3, boto3_cpu = cost["boto3"]
        where = f"{arch}, {runtime}"
        for name, label, target, key in [
            ("handler", "handler module, from the zip", 0.60, "import"),
            ("with .pyc", "from the zip, with .pyc", 1.0, "first"),
            ("no .pyc", "from the zip, no .pyc", None, ""),
        ]:
            spent, cpu = cost[name]
            bench = "4 cold import ÷ boto3" if name == "handler" else "4 first invocation ÷ boto3"
            measured = (
                f"{spent * 1000:.0f} ms vs import boto3 {boto3 * 1000:.0f} ms ({where}); "
                f"CPU {cpu * 1000:.0f} vs {boto3_cpu * 1000:.0f} ms = {cpu / boto3_cpu:.2f}"
            )
            ok = at_most(spent / boto3, target) if target is not None else None
            shown = f"≤ {target:.2f}" if target is not None else "report"
            section.rows.append(Row(bench, label, measured, spent / boto3, shown, ok, key=key))
        section.data["from_zip"] = {name: [w for w, _ in t] for name, t in times.items()}
        section.data["profile"] = profile(roots["with .pyc"], paths, {"LAMBDA_TASK_ROOT": shipped})
    top = ", ".join(f"{name} {ms:.0f} ms" for name, ms in section.data["profile"])
    section.rows.append(Row("4 import profile", "top ten, first invocation from the zip", top, None, "report", None))


def profile(root: Path, paths: Path, env: dict[str, str]) -> list[tuple[str, float]]:
    """The ten top-level packages whose import costs most (cumulative ms, median of 3), with
    s3purge's own modules as one entry (their self time: the rest is what they import)."""
    runs: dict[str, list[float]] = {}
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-X", "importtime", "-c", FIRST_INVOCATION, str(root), str(paths)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        costs: dict[str, float] = {"s3purge (own modules)": 0.0}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            own, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if name.startswith("s3purge"):
                costs["s3purge (own modules)"] += int(own) / 1000
                continue
            top = ".".join(name.split(".")[: 2 if name.startswith("importlib.") else 1])
            costs[top] = max(costs.get(top, 0.0), int(cumulative) / 1000)
        for name, ms in costs.items():
            runs.setdefault(name, []).append(ms)
    ranked = sorted(((n, statistics.median(v)) for n, v in runs.items()), key=lambda x: -x[1])
    return ranked[:10]
