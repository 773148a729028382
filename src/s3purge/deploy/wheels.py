"""The Lambda package's dependencies: wheels for the function's platform, installed once per key.

Wheels for the function's architecture and Python (manylinux, not the host's) are installed
by pip into a cache directory keyed by platform and requirements, so a redeploy only re-zips.
What the Lambda runtime already has (boto3 and its own dependencies), what only the command
line needs and httpx's async side are left out. `installed_dependencies` copies them from
this environment instead, offline, for a package that runs on this machine (the tests).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from s3purge.deploy import Architecture, DeployError

IN_LAMBDA_RUNTIME = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"})
"""Distributions every Lambda Python runtime provides; packaging them only adds size."""
CLI_ONLY = frozenset({"click", "tqdm"})
"""Needed by the command line, never by the handler (and httpx imports click when present)."""
ASYNC_ONLY = frozenset({"anyio", "typing-extensions", "sniffio"})
"""httpx's async side and what only it needs: the handler is sync (httpcore imports anyio if present)."""
LEFT_OUT = IN_LAMBDA_RUNTIME | CLI_ONLY | ASYNC_ONLY
PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "s3purge"


def runtime_requirements() -> list[str]:
    """s3purge's own requirements, minus extras and what the Lambda runtime provides."""
    found = []
    for requirement in metadata.requires("s3purge") or []:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        if name and _normal(name.group()) not in LEFT_OUT:
            found.append(requirement.split(";")[0].strip())
    return sorted(found)


def install_dependencies(arch: Architecture, runtime: str, cache_dir: Path) -> Path:
    """pip-install the runtime requirements for the target platform; reuse a finished install."""
    requirements = runtime_requirements()
    version = runtime.removeprefix("python")
    key = hashlib.sha256("\n".join([arch, version, *requirements, *sorted(LEFT_OUT)]).encode()).hexdigest()[:16]
    target = cache_dir / f"deps-{arch}-py{version}-{key}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        *wheel_options(arch, runtime),
        f"--target={target}",
        *requirements,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise DeployError(f"pip could not install the dependencies for {arch}/{runtime}:\n{tail}")
    remove_provided(target)
    (target / ".complete").write_text("\n".join(requirements) + "\n")
    return target


def wheel_options(arch: Architecture, runtime: str) -> list[str]:
    """pip options that pick wheels for the function's platform, never the host's."""
    platforms = [arg for plat in PLATFORMS[arch] for arg in ("--platform", plat)]
    version = runtime.removeprefix("python")
    return [*platforms, "--only-binary=:all:", "--implementation=cp", f"--python-version={version}"]


def remove_provided(target: Path) -> None:
    """Delete distributions pulled in transitively that the Lambda runtime already has."""
    for dist in metadata.distributions(path=[str(target)]):
        if _normal(dist.metadata["Name"]) not in LEFT_OUT:
            continue
        files = list(dist.files or [])  # read RECORD before deleting it
        for file in files:
            Path(target, file).unlink(missing_ok=True)
        for top in {Path(target, Path(f).parts[0]) for f in files}:
            if top.is_dir() and not any(p.is_file() for p in top.rglob("*")):
                shutil.rmtree(top)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_dependencies(target: Path) -> Path:
    """The runtime requirements as installed in this environment, copied to `target`.

    For a package that runs on this machine (its architecture and Python): offline and
    quick, so the test suite can build and run the real package without an index.
    """
    for dist in _closure(runtime_requirements()):
        for file in dist.files or []:
            parts = Path(file).parts
            if parts[0] == ".." or "__pycache__" in parts or file.suffix == ".pyc":
                continue
            destination = Path(target, file)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(str(dist.locate_file(file))), destination)
    return target


def _closure(requirements: list[str]) -> list[metadata.Distribution]:
    """Installed distributions the requirements need, transitively, minus what Lambda provides."""
    found: dict[str, metadata.Distribution] = {}
    todo = [_requirement_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in found or name in LEFT_OUT:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement whose marker excludes this Python
        found[name] = dist
        todo += [_requirement_name(r) for r in dist.requires or [] if "extra ==" not in r]
    return list(found.values())


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return _normal(match.group() if match else requirement)
