"""The Lambda package: s3purge, its runtime dependencies for the target platform, the config.

The config goes with its parsed tree as JSON, which the function loads without a YAML
parser (configfile.py); the YAML text stays the source of truth.

Dependencies are wheels for the function's architecture and Python, installed once per
platform and requirements (wheels.py), so a redeploy only re-zips. Every module is also
shipped compiled (.pyc) by the runtime's own Python version: /var/task is read-only, so
without them every cold start compiles everything again. The .pyc are unchecked-hash based
(no timestamps, never re-validated against the source: the package is immutable) and name
their source as /var/task/..., so the zip is reproducible: same inputs, same bytes, same
hash, and CloudFormation sees "no change" when nothing changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import s3purge
from s3purge.deploy import CONFIG_NAME, Architecture, DeployError
from s3purge.deploy.wheels import default_cache, install_dependencies
from s3purge.errors import ConfigError

UNUSED_FILES = ("yaml/_yaml.", "_yaml/")
"""PyYAML's C extension (a third of the package): the config is read with the pure-Python loader."""
NOT_AT_RUNTIME = ("demo", "deploy")
"""Subpackages of s3purge the function never imports."""
TASK_ROOT = "/var/task"
"""Where Lambda unpacks the package (LAMBDA_TASK_ROOT): the path compiled code names."""
MAX_UNZIPPED = 250 * 1024 * 1024
"""Lambda's limit for a function's unzipped code."""
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    path: Path
    sha256: str
    size: int
    unzipped: int
    files: int
    compiled: bool = True
    """False when no interpreter of the runtime's version was found to compile the .pyc."""

    def summary(self) -> str:
        line = (
            f"package {self.path.name}: {self.size / 2**20:.1f} MiB zipped, "
            f"{self.unzipped / 2**20:.1f} MiB unzipped, {self.files} files"
        )
        if not self.compiled:
            line += " (no .pyc: every cold start compiles; install that Python version here to fix)"
        return line


def build(
    config_path: Path,
    out: Path,
    *,
    arch: Architecture = "arm64",
    runtime: str = "python3.12",
    cache_dir: Path | None = None,
    dependencies: Path | None = None,
) -> Package:
    """Write the zip to `out`. `dependencies`: an already installed tree to use instead of pip."""
    deps = dependencies or install_dependencies(arch, runtime, cache_dir or default_cache())
    used = [entry for entry in _tree(deps) if not entry[0].startswith(UNUSED_FILES)]
    with tempfile.TemporaryDirectory(prefix="s3purge-stage-") as scratch:
        entries = [*used, *_source(), (CONFIG_NAME, config_path), *_config_tree(config_path, Path(scratch, "tree"))]
        python = target_python(runtime)
        if python is None:
            return write_zip(out, entries, compiled=False)
        return write_zip(out, compile_entries(entries, Path(scratch, "stage"), python))


def _config_tree(config_path: Path, folder: Path) -> list[tuple[str, Path]]:
    """The config's parsed tree as JSON, so the function loads it without PyYAML (configfile.py)."""
    from s3purge import configfile, yamlfile

    try:
        text = configfile.read_text(config_path)
        encoded = configfile.tree_json(yamlfile.parse(text, CONFIG_NAME), text)
    except ConfigError:
        return []  # the function reports it, reading the YAML as it always did
    if encoded is None:
        return []
    name = CONFIG_NAME + configfile.TREE_SUFFIX
    folder.mkdir()
    Path(folder, name).write_bytes(encoded)
    return [(name, Path(folder, name))]


def target_python(runtime: str) -> str | None:
    """An interpreter of the runtime's Python version on this machine (bytecode differs per version)."""
    version = runtime.removeprefix("python")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv", "versions")
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(str(p) for p in pyenv.glob(f"{version}*/bin/python{version}")),
    ]
    for candidate in filter(None, candidates):
        asked = [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        answer = subprocess.run(asked, capture_output=True, text=True, check=False)
        if answer.returncode == 0 and answer.stdout.strip() == version:
            return candidate
    return None


def compile_entries(entries: list[tuple[str, Path]], stage: Path, python: str) -> list[tuple[str, Path]]:
    """The entries plus __pycache__/*.pyc for every module, compiled by `python` in `stage`."""
    for name, path in entries:
        Path(stage, name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(stage, name))
    command = [
        python,
        "-I",
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(stage),
        "-p",
        TASK_ROOT,
        str(stage),
    ]
    # A fixed hash seed: the order of frozenset constants in the bytecode depends on it.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-8:])
        raise DeployError(f"cannot compile the package with {python}:\n{tail}")
    compiled = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*.pyc"))
    return [*entries, *((name, Path(stage, name)) for name in compiled)]


def _tree(root: Path) -> list[tuple[str, Path]]:
    """Every file under `root` as (name in zip, path), skipping caches and pip's own scripts."""
    entries = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and "__pycache__" not in rel.parts and rel.parts[0] not in ("bin", ".complete"):
            entries.append((rel.as_posix(), path))
    return entries


def _source() -> list[tuple[str, Path]]:
    """s3purge's own modules, from wherever it is installed (wheel or source tree)."""
    root = Path(s3purge.__file__).parent
    return [
        (f"s3purge/{name}", path)
        for name, path in _tree(root)
        if name.split("/")[0] not in NOT_AT_RUNTIME and path.suffix in (".py", ".typed")
    ]


def write_zip(out: Path, entries: list[tuple[str, Path]], *, compiled: bool = True) -> Package:
    """A reproducible zip: sorted names, fixed timestamps, normalised permissions."""
    out.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    if unzipped > MAX_UNZIPPED:
        raise DeployError(f"package is {unzipped / 2**20:.0f} MiB unzipped; Lambda allows 250 MiB")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return Package(
        path=out, sha256=digest, size=out.stat().st_size, unzipped=unzipped, files=len(entries), compiled=compiled
    )


def from_file(path: Path, config_path: Path) -> Package:
    """A package built earlier; it must carry exactly the config being deployed."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            shipped = archive.read(CONFIG_NAME) if CONFIG_NAME in archive.namelist() else None
    except (OSError, zipfile.BadZipFile) as error:
        raise DeployError(f"{path}: not a usable package ({error})") from None
    if shipped != config_path.read_bytes():
        raise DeployError(f"{path} does not contain {config_path} as {CONFIG_NAME}; rebuild it (omit --package)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    unzipped = sum(i.file_size for i in infos)
    return Package(path=path, sha256=digest, size=path.stat().st_size, unzipped=unzipped, files=len(infos))
