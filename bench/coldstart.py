"""Benchmark 4: cold start and package size.

A fresh interpreter importing the Lambda handler module, against one importing boto3 (the
SDK every Python Lambda may use for free), median of 20 each, interleaved so both see the
same noise. Also: the same import from the built package as Lambda runs it (the zip's
unchecked-hash .pyc files, on a read-only file system: nothing compiled at cold start), the
zip's size (built by s3purge.deploy.package for arm64 / Python 3.12, what `deploy` ships),
and the five packages whose import costs most (`-X importtime`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import Row, Section, at_most, median

RUNS = 20
HANDLER = "import s3purge.entry.aws_lambda"
BOTO3 = "import boto3"
MB = 1_000_000
CONFIG = """\
cdns:
  edge: {vendor: http, endpoints: ["http://127.0.0.1:6081"]}
buckets:
  site:
    - {cdn: edge, hosts: [www.example.com]}
"""


COLD_START = """
import os
from s3purge.entry import aws_lambda
class Context:
    def get_remaining_time_in_millis(self): return 60_000
aws_lambda.handler({"Service": "Amazon S3", "Event": "s3:TestEvent"}, Context())
"""
"""Import, then the first invocation's setup (config, secrets, logging) on an S3 test event (no calls)."""


def wall(code: str, *flags: str, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *flags, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run() -> Section:
    section = Section()
    for code in (HANDLER, BOTO3, "pass"):
        wall(code)  # write .pyc files and warm the page cache for all three alike
    times: dict[str, list[float]] = {HANDLER: [], BOTO3: [], "pass": []}
    for _ in range(RUNS):
        for code, spent in times.items():
            spent.append(wall(code))
    handler, boto3, bare = (median(times[c]) for c in (HANDLER, BOTO3, "pass"))
    ratio = handler / boto3
    section.rows.append(
        Row(
            "4 cold import ÷ boto3",
            "handler module",
            f"{handler * 1000:.0f} ms vs {boto3 * 1000:.0f} ms (bare interpreter {bare * 1000:.0f} ms)",
            ratio,
            "≤ 0.50",
            at_most(ratio, 0.50),
            key="import",
        )
    )
    net = (handler - bare) / (boto3 - bare)
    section.rows.append(
        Row(
            "4 cold import ÷ boto3",
            "net of interpreter",
            f"{(handler - bare) * 1000:.0f} ms vs {(boto3 - bare) * 1000:.0f} ms",
            net,
            "report",
            None,
        )
    )
    with tempfile.TemporaryDirectory() as root:
        Path(root, "multicdn.config.yml").write_text(CONFIG)
        env = {**os.environ, "LAMBDA_TASK_ROOT": root, "debug": "false"}
        env.pop("config_file", None)
        cold = median([wall(COLD_START, env=env) for _ in range(RUNS // 2)])
    section.rows.append(
        Row(
            "4 cold import ÷ boto3",
            "import + first-call setup",
            f"{cold * 1000:.0f} ms (config, secrets, JSON logging; no vendor call)",
            cold / boto3,
            "report",
            None,
        )
    )
    section.data["imports"] = {"handler": times[HANDLER], "boto3": times[BOTO3], "interpreter": times["pass"]}
    _package(section, boto3)
    section.data["profile"] = profile()
    top = ", ".join(f"{name} {ms:.0f} ms" for name, ms in section.data["profile"])
    section.rows.append(Row("4 import profile", "top five", top, None, "report", None))
    return section


def _package(section: Section, boto3: float) -> None:
    from s3purge.deploy.package import build

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "multicdn.config.yml")
        config.write_text(CONFIG)
        try:
            package = build(config, Path(tmp, "arm64.zip"), arch="arm64", runtime="python3.12")
        except Exception as error:  # noqa: BLE001 - no network for pip: report it, go on
            section.rows.append(Row("4 Lambda zip", "arm64, py3.12", f"not built: {error}", None, "≤ 5 MB", False))
            return
        size = package.size / MB
        section.rows.append(
            Row(
                "4 Lambda zip ÷ 5 MB",
                "arm64, py3.12",
                f"{size:.2f} MB zipped, {package.unzipped / MB:.1f} MB unzipped, {package.files} files",
                size / 5,
                "≤ 1.00",
                at_most(size / 5, 1.0),
                key="zip",
            )
        )
        section.data["zip"] = package.size
        shipped = _as_shipped(config, Path(tmp))
        if shipped is not None:
            section.rows.append(
                Row(
                    "4 cold import ÷ boto3",
                    "from the zip, with .pyc",
                    f"{shipped * 1000:.0f} ms (host-arch build of the same package, py{sys.version_info[1]})",
                    shipped / boto3,
                    "report",
                    None,
                    key="import-zip",
                )
            )


def _as_shipped(config: Path, tmp: Path) -> float | None:
    """Median import time from an unpacked package built for this machine (with its .pyc)."""
    from s3purge.deploy.package import build

    version = f"python3.{sys.version_info[1]}"
    try:
        if os.uname().machine == "x86_64":
            package = build(config, tmp / "host.zip", arch="x86_64", runtime=version)
        else:
            package = build(config, tmp / "host.zip", arch="arm64", runtime=version)
    except Exception:  # noqa: BLE001 - reported as a missing row
        return None
    root = tmp / "task"
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(root)
    # -I: none of this venv's site-packages; -B: no .pyc written (Lambda's /var/task is read-only)
    code = f"import sys; sys.path.insert(0, {str(root)!r}); import s3purge.entry.aws_lambda"
    return statistics.median(wall(code, "-I", "-B") for _ in range(5))


def profile() -> list[tuple[str, float]]:
    """The five top-level packages whose import costs most (cumulative ms, median of 3)."""
    runs: dict[str, list[float]] = {}
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", HANDLER], check=True, capture_output=True, text=True
        )
        costs: dict[str, float] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            top = ".".join(name.split(".")[: 2 if name.startswith("importlib.") else 1])
            costs[top] = max(costs.get(top, 0.0), int(cumulative) / 1000)
        for name, ms in costs.items():
            runs.setdefault(name, []).append(ms)
    ranked = sorted(((n, statistics.median(v)) for n, v in runs.items() if n != "s3purge"), key=lambda x: -x[1])
    return ranked[:5]
