"""The Lambda package: target-platform wheels, nothing the runtime has, the config, reproducible."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from s3purge import configfile
from s3purge.deploy import DeployError, wheels
from s3purge.deploy import package as packages
from tests.deploy.conftest import write_config

ELF_AARCH64 = 183
MAGIC_312 = (3531).to_bytes(2, "little") + b"\r\n"
"""Python 3.12's bytecode magic number (importlib.util.MAGIC_NUMBER there)."""
PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def cached(source: str, tag: str) -> str:
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name.removesuffix('.py')}.{tag}.pyc".lstrip("/")


def top_levels(names: list[str]) -> set[str]:
    return {n.split("/")[0].split("-")[0].removesuffix(".py").lower() for n in names}


def test_the_default_package_is_for_arm64_python312_without_what_lambda_has(
    lambda_deps: Path, config_file: Path, tmp_path: Path
) -> None:
    built = packages.build(config_file, tmp_path / "p.zip", dependencies=lambda_deps)
    with zipfile.ZipFile(built.path) as archive:
        names = archive.namelist()
        (core,) = [n for n in names if n.startswith("msgspec/_core.") and n.endswith(".so")]
        elf = archive.read(core)[:20]
        shipped_config = archive.read("multicdn.config.yml")
        tree = archive.read("multicdn.config.yml.tree.json")
    assert "cpython-312-aarch64-linux-gnu" in core
    assert elf[:4] == b"\x7fELF" and struct.unpack_from("<H", elf, 18)[0] == ELF_AARCH64
    tops = top_levels(names)
    assert {"s3purge", "httpx", "msgspec", "yaml", "tenacity"} <= tops
    assert not tops & {"pydantic", "pydantic_core"}
    left_out = {*PROVIDED, "python_dateutil", "click"}  # the runtime has them; click is for the CLI only
    assert not tops & left_out, tops & left_out
    assert "s3purge/entry/aws_lambda.py" in names
    assert not [n for n in names if n.startswith(("s3purge/deploy/", "s3purge/demo/"))]
    assert not [n for n in names if n.startswith("bin/")]
    sources = [n for n in names if n.endswith(".py")]
    compiled = {n for n in names if n.endswith(".pyc")}
    assert compiled == {cached(n, "cpython-312") for n in sources}  # every module, for the runtime's Python
    with zipfile.ZipFile(built.path) as archive:
        header = archive.read(cached("s3purge/entry/aws_lambda.py", "cpython-312"))[:8]
    assert header[:4] == MAGIC_312 and header[4] == 0b01  # hash-based, never checked against the source
    assert shipped_config == config_file.read_bytes()
    assert configfile.from_json(tree, config_file.read_text()) is not None  # its parsed tree, for the cold start
    assert built.size < 10 * 2**20, built.summary()  # far below Lambda's 50 MiB
    assert built.summary().startswith("package p.zip: ")
    assert "MiB zipped" in built.summary()


def test_the_same_inputs_give_the_same_bytes(lambda_deps: Path, config_file: Path, tmp_path: Path) -> None:
    first = packages.build(config_file, tmp_path / "a.zip", dependencies=lambda_deps)
    again = packages.build(config_file, tmp_path / "b.zip", dependencies=lambda_deps)
    assert first.sha256 == again.sha256  # so a redeploy without changes changes nothing
    changed = packages.build(
        write_config(tmp_path / "c.yml", prefix="www/"), tmp_path / "c.zip", dependencies=lambda_deps
    )
    assert changed.sha256 != first.sha256


def test_installed_dependencies_are_reused(lambda_deps: Path, cache_home: Path) -> None:
    marker = (lambda_deps / ".complete").stat().st_mtime_ns
    assert wheels.install_dependencies("arm64", "python3.12", cache_home / "s3purge") == lambda_deps
    assert (lambda_deps / ".complete").stat().st_mtime_ns == marker


def test_requirements_leave_out_the_runtime_and_extras() -> None:
    names = [r.split(">")[0].split("<")[0].split("=")[0].lower() for r in wheels.runtime_requirements()]
    assert "httpx" in names and "msgspec" in names
    assert "boto3" not in names and "moto" not in names and "pytest" not in names


def test_a_prebuilt_package_must_carry_the_config_being_deployed(config_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    built = packages.build(config_file, tmp_path / "p.zip", dependencies=empty)
    assert packages.from_file(built.path, config_file).sha256 == built.sha256
    other = write_config(tmp_path / "other.yml", prefix="elsewhere/")
    with pytest.raises(DeployError, match=r"does not contain .*other\.yml"):
        packages.from_file(built.path, other)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(DeployError, match="not a usable package"):
        packages.from_file(tmp_path / "junk.zip", config_file)
