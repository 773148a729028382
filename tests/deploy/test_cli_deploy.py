"""The commands as a user types them: template, deploy (--dry-run), destroy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from s3purge import config as config_module
from s3purge.deploy import Options, stack, template
from s3purge.deploy import package as packages
from s3purge.deploy.aws import Aws
from s3purge.entry.cli import main
from tests.deploy.conftest import drain, snapshot


def test_template_prints_what_deploy_would_create(config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "stack.json"
    result = CliRunner().invoke(
        main, ["template", "--config", str(config_file), "--trigger", "direct", "--arch", "x86_64", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    expected = template.build(config_module.load(config_file), Options(trigger="direct", arch="x86_64"))
    assert json.loads(out.read_text()) == expected
    assert "NotificationTarget output" in result.output


def test_template_output_json_or_a_file_name_is_refused_with_a_hint(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    runner = CliRunner()

    as_json = runner.invoke(main, ["template", "--config", str(config_file), "--output", "json"])
    as_file = runner.invoke(main, ["template", "--config", str(config_file), "--output=stack.json"])
    short = runner.invoke(main, ["template", "--config", str(config_file), "-o", "stack.yml", "--format", "yaml"])

    assert (as_json.exit_code, as_file.exit_code) == (2, 2)
    assert as_json.stderr == (
        "error: template prints CloudFormation, not a json report: --format json|yaml picks its format, "
        "--out FILE writes it to a file\n"
    )
    assert as_file.stderr == "error: template: --output is now --out (--out stack.json)\n"
    assert short.exit_code == 0, short.output
    assert sorted(p.name for p in here.iterdir()) == ["stack.yml"]  # no file named json, nor stack.json
    assert json.loads(as_json.stdout)["error"] == as_json.stderr.removeprefix("error: ").strip()  # asked for json


def test_deploy_and_destroy_from_the_command_line(
    boto: Any, buckets: dict[str, str], config_file: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    zip_path = packages.build(config_file, tmp_path / "s3purge.zip", dependencies=empty).path
    deploy = ["deploy", "--config", str(config_file), "--package", str(zip_path), "--bucket", "site"]
    runner = CliRunner()

    preview = runner.invoke(main, [*deploy, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "would create" in preview.output and "+ EventSourceMapping" in preview.output
    assert "Function" not in str(getattr(boto, "lambda").list_functions()["Functions"])

    asked = runner.invoke(main, deploy)  # no terminal to ask on, no --yes: nothing happens
    assert asked.exit_code == 0, asked.output
    assert "no terminal to ask on: add --yes to go ahead" in asked.output
    assert "Function" not in str(getattr(boto, "lambda").list_functions()["Functions"])
    assert snapshot(boto)["stacks"] == []  # nor the empty stack a change set makes

    done = runner.invoke(main, [*deploy, "--yes"])
    assert done.exit_code == 0, done.output
    assert "package s3purge.zip:" in done.output and "MiB zipped" in done.output
    assert "stack s3purge: CREATE_COMPLETE" in done.output
    assert "bucket site: set s3purge:s3purge" in done.output and "media" not in done.output

    drain(boto, "s3purge-events")  # S3's test event, which the function would have consumed
    gone = runner.invoke(main, ["destroy", "--yes"])
    assert gone.exit_code == 0, gone.output
    assert "bucket site: removed our notification entry" in gone.output
    assert gone.output.rstrip().endswith("destroyed s3purge")
    assert getattr(boto, "lambda").list_functions()["Functions"] == []


@pytest.mark.usefixtures("buckets")
@pytest.mark.parametrize("interrupt", ["end of input", "ctrl-c"])
def test_an_interrupted_question_leaves_no_change_set_nor_stack(
    boto: Any, account: Aws, config_file: Path, quick_package: Any, interrupt: str
) -> None:
    said: list[str] = []

    def ask(question: str) -> bool:
        if interrupt == "ctrl-c":
            raise KeyboardInterrupt
        return click.confirm(question, default=False, err=True)  # stdin ends: click raises Abort

    loaded = config_module.load(config_file)
    with CliRunner().isolation(input=""), pytest.raises((click.Abort, KeyboardInterrupt)):
        stack.deploy(loaded, Options(), quick_package(config_file), account, said.append, confirm=ask)

    assert said[-1] == (
        "interrupted: discarded the change set and the empty stack it made; nothing was created, changed or removed"
    )
    assert snapshot(boto)["stacks"] == []  # no REVIEW_IN_PROGRESS stack holding the change set
    stack.deploy(loaded, Options(), quick_package(config_file), account, said.append, confirm=lambda q: False)
    assert said[-1] == "nothing was created, changed or removed"  # not refused as a leftover


def test_errors_are_one_line_and_exit_2(boto: Any, config_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["deploy", "--config", str(config_file), "--bucket", "nope", "--dry-run"])
    assert result.exit_code == 2
    assert result.output.startswith("error: bucket(s) nope have no routes in ")
