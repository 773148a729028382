"""The Lambda package: zip size and first invocation from the zip, ÷ `import boto3` (same run).

    python -m bench.package          # a minute; needs the index once (edgegrid-python, arm64 wheels)

Each variant is unpacked and run as Lambda runs it: a fresh interpreter (-I -S -B) whose
path holds only the package and what the runtime provides (boto3 and its dependencies),
invoked once with an SQS event that makes one Akamai purge against the strict emulator
(EdgeGrid signature checked). Variants, all built for this machine:
  shipped     what deploy builds: .pyc compiled for the runtime, EdgeGrid signed in-house
  no .pyc     the same without the .pyc (every module compiled at each cold start)
  edgegrid    the alternative: edgegrid-python + requests bundled, imported at the first
              signature as the earlier code did
Reference: `import boto3` from the same path with the same flags, interleaved, median of 9.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

from tests.emulators import akamai

from s3purge.deploy import package as packages
from s3purge.deploy import wheels

RUNS = 9
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
ARCH = "x86_64" if __import__("platform").machine() == "x86_64" else "arm64"
BUNDLED = ["edgegrid-python==2.0.9"]
FIRST_INVOCATION = """
import json, sys
sys.path[:0] = sys.argv[1:3]
if sys.argv[3] == "edgegrid":
    import requests, akamai.edgegrid  # what the bundled signer imports at its first signature
from s3purge.entry.aws_lambda import handler
class Context:
    def get_remaining_time_in_millis(self): return 30_000
record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
          "s3": {"bucket": {"name": "site"}, "object": {"key": "a.html"}}}
event = {"Records": [{"messageId": "m", "body": json.dumps({"Records": [record]}), "eventSource": "aws:sqs",
                      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q"}]}
assert handler(event, Context()) == {"batchItemFailures": []}
"""
BOTO3 = "import sys; sys.path[:0] = sys.argv[1:3]; import boto3"


def config(url: str) -> str:
    return (
        f'cdns:\n  ak: {{vendor: akamai, api_base: "{url}", client_token: {akamai.CLIENT_TOKEN}, '
        f"client_secret: {akamai.CLIENT_SECRET}, access_token: {akamai.ACCESS_TOKEN}}}\n"
        "buckets:\n  site:\n    - {cdn: ak, hosts: [www.example.com]}\n"
    )


def runtime_dir(root: Path) -> Path:
    root.mkdir()
    for name in wheels.IN_LAMBDA_RUNTIME:
        dist = metadata.distribution(name)
        for top in {Path(f).parts[0] for f in dist.files or [] if Path(f).parts[0] != ".."}:
            if not Path(root, top).exists():
                Path(root, top).symlink_to(Path(str(dist.locate_file(top))))
    return root


def unpack(zip_path: Path, root: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root)
    return root


def wall(code: str, *args: str) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-I", "-S", "-B", "-c", code, *args]
    done = subprocess.run(command, capture_output=True, env={"LAMBDA_TASK_ROOT": args[0]}, check=False)
    if done.returncode:
        raise SystemExit(done.stderr.decode()[-2000:])
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, akamai.AkamaiEmulator() as emulator:
        tmp = Path(scratch)
        cfg = tmp / "multicdn.config.yml"
        cfg.write_text(config(emulator.url))
        deps = wheels.installed_dependencies(tmp / "deps")
        bundled = tmp / "bundled"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(bundled), *BUNDLED], check=True)
        wheels.remove_provided(bundled)
        entries = [*packages._tree(deps), *packages._source(), (packages.CONFIG_NAME, cfg)]
        with_bundled = list(dict([*entries, *packages._tree(bundled)]).items())  # bundled copies win
        python = packages.target_python(RUNTIME)
        assert python is not None
        zips = {
            "shipped": packages.build(cfg, tmp / "shipped.zip", arch=ARCH, runtime=RUNTIME, dependencies=deps),
            "no .pyc": packages.write_zip(tmp / "plain.zip", entries, compiled=False),
            "edgegrid": packages.write_zip(
                tmp / "edgegrid.zip",
                packages.compile_entries(with_bundled, tmp / "stage", python),
            ),
        }
        runtime = runtime_dir(tmp / "runtime")
        roots = {name: unpack(z.path, tmp / f"task-{i}") for i, (name, z) in enumerate(zips.items())}
        times: dict[str, list[float]] = {name: [] for name in [*zips, "boto3"]}
        for _ in range(RUNS):
            times["boto3"].append(wall(BOTO3, str(roots["shipped"]), str(runtime)))
            for name, root in roots.items():
                times[name].append(wall(FIRST_INVOCATION, str(root), str(runtime), name))
        boto3 = statistics.median(times["boto3"])
        print(f"import boto3: {boto3 * 1000:.0f} ms ({ARCH}, {RUNTIME}; median of {RUNS})")
        for name, built in zips.items():
            first = statistics.median(times[name])
            print(
                f"{name:9} zip {built.size / 2**20:5.2f} MiB ({built.unzipped / 2**20:.1f} MiB unzipped, "
                f"{built.files} files); first invocation {first * 1000:4.0f} ms = {first / boto3:.2f} x import boto3"
            )
        arm = packages.build(cfg, tmp / "arm64.zip", arch="arm64", runtime="python3.12")
        print(f"deploy's default (arm64, python3.12): {arm.summary()}")
        print(json.dumps({k: [round(t, 4) for t in v] for k, v in times.items()}))


if __name__ == "__main__":
    main()
