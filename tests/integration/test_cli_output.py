"""CLI conventions as a script sees them: JSON documents, exit codes, one-line errors, global options."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from s3purge.demo.bed import Moto, free_port
from s3purge.entry.cli import main
from tests.conftest import serving
from tests.integration.test_cli_purge import HOST, SAMPLE, TOKEN, Cache, http_config

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "json-output.schema.json").read_text())


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def document(result: Result) -> dict[str, Any]:
    """The one JSON document on stdout, valid against docs/json-output.schema.json."""
    doc: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["exit_code"] == result.exit_code
    return doc


def test_plan_json_names_batches_requests_and_unrouted_keys(tmp_path: Path) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")

    result = run(
        "--output", "json", "--config", str(path), "plan", "site/public/a b.html", "s3://site/private/x",
        env={"PURGE_TOKEN": TOKEN},
    )  # fmt: skip

    doc = document(result)
    assert doc["command"] == "plan" and doc["ok"] is True
    batch, plus = doc["batches"]  # one URL per call: each spelling S3 serves "a b.html" under
    assert (batch["values"], plus["values"]) == ([f"https://{HOST}/a%20b.html"], [f"https://{HOST}/a+b.html"])
    assert batch["requests"][0]["headers"]["x-purge-token"] == "***"
    assert doc["skipped"] == [
        {
            "source": "arg1",
            "bucket": "site",
            "key": "private/x",
            "event": "created",
            "reason": "created key 'private/x' matches no route of bucket 'site' (edge: prefix 'public/')",
        }
    ]
    assert TOKEN not in result.stdout


def test_plan_text_warns_about_unrouted_keys_and_refuses_unknown_buckets(tmp_path: Path) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")

    unrouted = run("plan", "--config", str(path), "site/private/x")
    unknown = run("plan", "--config", str(path), "s3://typo/public/a.html")

    assert unrouted.exit_code == 0
    assert "warning: site/private/x (arg0): created key 'private/x' matches no route" in unrouted.stderr
    assert unknown.exit_code == 2
    assert unknown.stderr == "error: no route for bucket 'typo'; configured: site\n"


def test_global_config_and_the_environment_variable_choose_the_file(tmp_path: Path) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")

    from_env = run("--output", "json", "config", "check", env={"S3PURGE_CONFIG": str(path)})
    default = run("--output", "json", "config", "check", env={"S3PURGE_CONFIG": None})  # type: ignore[dict-item]
    global_option = run("--config", str(path), "plan", "site/public/a.html", "--output", "json")

    assert document(from_env)["path"] == str(path)
    assert document(from_env)["cdns"] == {"edge": "http"}
    assert global_option.exit_code == 0 and document(global_option)["batches"]
    assert default.exit_code == 2
    assert document(default)["error"].startswith("multicdn.config.yml: cannot read config file")


def test_the_global_config_reaches_commands_with_their_own_config_option(tmp_path: Path) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")

    result = run("template", env={"S3PURGE_CONFIG": str(path)})

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["Metadata"]["s3purge"]["buckets"] == ["site"]


def test_purge_tag_prefix_everything_and_from_file_in_one_dry_run(tmp_path: Path) -> None:
    config = tmp_path / "cloudflare.yml"
    config.write_text(
        f"cdns:\n  f: {{vendor: cloudflare, zone_id: '{'0' * 32}', api_token: tok}}\n"
        "buckets:\n  site:\n    - {cdn: f, hosts: [www.example.test]}\n"
    )
    listed = tmp_path / "list.txt"
    listed.write_text("# what changed\nhttps://www.example.test/a.css\n\ns3://site/b.js\n")

    result = run(
        "purge", "--config", str(config), "--cdn", "f", "--tag", "product-7", "--prefix", "https://www.example.test/img/",
        "--from-file", str(listed), "--output", "json",
    )  # fmt: skip
    everything = run("purge", "--config", str(config), "--cdn", "f", "--everything", "--output", "json")

    doc = document(result)
    kinds = {b["kind"]: b["values"] for b in doc["batches"]}
    assert kinds == {
        "tag": ["product-7"],
        "prefix": ["https://www.example.test/img/"],
        "url": ["https://www.example.test/a.css", "https://www.example.test/b.js"],
    }
    assert doc["dry_run"] is True
    (batch,) = document(everything)["batches"]
    assert batch["kind"] == "everything"
    assert json.loads(batch["requests"][0]["body"]) == {"purge_everything": True}
    assert batch["requests"][0]["headers"]["authorization"] == "***"


def test_purge_send_json_outcomes_summary_and_exit_status(tmp_path: Path) -> None:
    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)
        ok = run("purge", "--config", str(path), "--cdn", "edge", "--send", "--output", "json",
                 "--key", "site/public/x.html", env={"PURGE_TOKEN": TOKEN})  # fmt: skip
        refused = run("purge", "--config", str(path), "--cdn", "edge", "--send", "--output", "json",
                      "--key", "site/public/x.html", env={"PURGE_TOKEN": "wrong"})  # fmt: skip

    assert ok.exit_code == 0
    assert document(ok)["summary"] == {"batches": 1, "items": 1, "ok": 1, "failed": 0}
    assert refused.exit_code == 1
    (outcome,) = document(refused)["outcomes"]
    assert outcome["ok"] is False and "HTTP 403" in outcome["detail"]
    assert "wrong" not in refused.stdout + refused.stderr


def test_purge_send_text_prints_a_summary_unless_quiet(tmp_path: Path) -> None:
    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)
        args = ["purge", "--config", str(path), "--cdn", "edge", "--send", "--key", "site/public/x.html"]
        loud = run(*args, env={"PURGE_TOKEN": TOKEN})
        quiet = run(*args, "-q", env={"PURGE_TOKEN": TOKEN})
        verbose = run("-v", *args, env={"PURGE_TOKEN": TOKEN})

    assert "summary: 1 item(s) in 1 batch(es): 1 ok, 0 failed" in loud.stderr
    assert quiet.stderr == ""
    assert quiet.stdout.startswith("ok ")
    assert "vendor call" not in loud.stderr
    (call,) = [json.loads(line) for line in verbose.stderr.splitlines() if '"vendor call"' in line]
    assert (call["cdn"], call["status"], call["result"]) == ("edge", 200, "accepted")


def test_a_send_stops_at_its_deadline_and_says_how_to_raise_it(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes connections (backlog), never answers
        path = http_config(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}")
        args = ["purge", "--config", str(path), "--cdn", "edge", "--yes", "--key", "site/public/x.html"]
        started = time.monotonic()
        result = run(*args, "--deadline", "1", env={"PURGE_TOKEN": TOKEN})
        took = time.monotonic() - started

    assert result.exit_code == 1
    assert took < 5  # the vendor call's own timeout is 5 s: the deadline cut it short
    assert (
        "warning: the 1 s deadline ran out with 1 failed: what was not done in time counts as failed; "
        "raise it with --deadline SECONDS"
    ) in result.stderr.splitlines()
    for command in ("purge", "replay", "redrive"):
        assert "--deadline SECONDS  " in run(command, "--help").stdout


def test_migrate_keeps_the_source_mode_and_explains_a_missing_directory(tmp_path: Path) -> None:
    source = tmp_path / "legacy.yml"
    source.write_text(SAMPLE.read_text())
    source.chmod(0o600)

    written = run("config", "migrate", str(source), str(tmp_path / "new.yml"))
    missing = run("config", "migrate", str(source), str(tmp_path / "no" / "such" / "new.yml"))

    assert written.exit_code == 0, written.output
    assert stat.S_IMODE((tmp_path / "new.yml").stat().st_mode) == 0o600
    assert missing.exit_code == 2
    assert (
        missing.stderr.splitlines()[-1]
        == f"error: {tmp_path}/no/such/new.yml: directory {tmp_path}/no/such does not exist"
    )
    assert "Traceback" not in missing.output


def test_legacy_notes_are_one_line_except_when_checking_migrating_or_verbose(tmp_path: Path) -> None:
    source = tmp_path / "legacy.yml"
    source.write_text(SAMPLE.read_text())
    summary = f"warning: 5 notes converting the legacy config {source}; see `s3purge config check {source}`"

    quiet = run("--config", str(source), "plan", "-q")
    plan = run("--config", str(source), "plan")
    purge = run("--config", str(source), "purge", "--cdn", "cloudflare", "https://www.example.com/a", "--dry-run")
    verbose = run("--config", str(source), "plan", "-v")
    check = run("config", "check", str(source))
    migrate = run("config", "migrate", str(source), str(tmp_path / "new.yml"))

    assert quiet.stderr == ""
    assert plan.stderr.splitlines() == [summary]
    assert summary in purge.stderr.splitlines() and purge.stderr.count("warning: ") == 1
    for full in (verbose, check, migrate):
        notes = [line for line in full.stderr.splitlines() if line.startswith("warning: ")]
        assert len(notes) == 5 == len(set(notes)), full.stderr
        assert all(line.startswith(f"warning: {source}:") for line in notes)


def test_replay_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(s3_event("site", "public/a.html")) + "\n" + '{"Records": [{"s3": {}}]}\n')

    result = run("replay", "--config", str(path), str(events))

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {events}:2: ")
    assert "Records[0]" in result.stderr


def test_replay_reads_receive_message_output_and_json_lines(tmp_path: Path) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")
    received = tmp_path / "received.json"
    received.write_text(
        json.dumps(
            {
                "Messages": [
                    {"MessageId": "m-1", "ReceiptHandle": "r", "Body": json.dumps(s3_event("site", "public/a.html"))}
                ]
            }
        )
    )
    lines = tmp_path / "more.jsonl"
    lines.write_text(
        json.dumps(s3_event("site", "public/b+c.html")) + "\n\n" + json.dumps(s3_event("site", "public/d.html")) + "\n"
    )

    result = run("replay", "--config", str(path), str(received), str(lines), "--output", "json")

    doc = document(result)
    assert doc["dry_run"] is True and doc["changes"] == 3
    sent = {value: batch["sources"] for batch in doc["batches"] for value in batch["values"]}
    assert sorted(sent) == [f"https://{HOST}/{name}" for name in ("a.html", "b%20c.html", "b+c.html", "d.html")]
    assert sent[f"https://{HOST}/a.html"] == ["m-1"]


def test_replay_an_s3_listing_purges_every_object_under_the_prefix(tmp_path: Path, boto: Any) -> None:
    boto.s3.create_bucket(Bucket="site")
    for key in ("public/a.html", "public/dir/b c.css", "other/x"):
        boto.s3.put_object(Bucket="site", Key=key, Body=b"x")
    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)
        result = run("replay", "--config", str(path), "s3://site/public/", "--send", env={"PURGE_TOKEN": TOKEN})

    assert result.exit_code == 0, result.output
    assert sorted(r.path for r in cache.requests) == ["/a.html", "/dir/b%20c.css", "/dir/b+c.css"]


def test_worker_refuses_a_bad_url_a_missing_queue_an_unreachable_endpoint(
    tmp_path: Path, aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURGE_TOKEN", TOKEN)
    path = http_config(tmp_path, "http://127.0.0.1:9")
    base = ["worker", "--config", str(path), "--queue-url"]

    bad_url = run(*base, "my-queue")
    missing = run(*base, f"{aws.url}/123456789012/no-such-queue")
    unreachable = run(
        *base, f"http://127.0.0.1:{free_port()}/123456789012/q",
        env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_MAX_ATTEMPTS": "1"},
    )  # fmt: skip

    for result in (bad_url, missing, unreachable):
        assert result.exit_code == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ")
    assert bad_url.stderr == (
        "error: --queue-url 'my-queue' is not a queue URL (expected https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)\n"
    )
    assert "the queue does not exist" in missing.stderr
    assert "Could not connect to the endpoint URL" in unreachable.stderr


def test_the_worker_takes_the_region_from_the_queue_url_when_none_is_set(tmp_path: Path, aws: Moto) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/no-such-queue"
    no_region = {"AWS_DEFAULT_REGION": None, "AWS_REGION": None, "AWS_CONFIG_FILE": str(tmp_path / "none")}

    result = run("worker", "--config", str(path), "--queue-url", url, env={**no_region, "PURGE_TOKEN": TOKEN})  # type: ignore[dict-item]

    assert result.exit_code == 2
    assert result.stderr.startswith("error: AWS: the queue does not exist"), result.stderr  # asked eu-west-1
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"  # this command's region only


def test_no_credentials_is_one_line(tmp_path: Path) -> None:
    # A fresh process: boto3's default session caches the credentials it found once.
    path = http_config(tmp_path, "http://127.0.0.1:9")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1", "PURGE_TOKEN": TOKEN}  # fmt: skip

    result = subprocess.run(
        [sys.executable, "-m", "s3purge", "--config", str(path), "worker", "--queue-url",
         "https://sqs.us-east-1.amazonaws.com/123456789012/q"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr.startswith("error: AWS: no credentials found")
    assert len(result.stderr.splitlines()) == 1


def test_a_missing_profile_is_one_line_and_the_environment_is_restored(tmp_path: Path, aws: Moto) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")

    result = run(
        "--profile", "nosuch", "worker", "--config", str(path), "--queue-url", f"{aws.url}/1/q",
        env={"PURGE_TOKEN": TOKEN},
    )  # fmt: skip

    assert result.exit_code == 2
    assert result.stderr == "error: AWS: The config profile (nosuch) could not be found\n"
    assert "AWS_PROFILE" not in os.environ


def test_the_lambda_handler_imports_neither_the_cli_nor_the_progress_library() -> None:
    # (httpx imports click when it is installed, for its own CLI: the Lambda zip leaves click out)
    code = (
        "import sys, s3purge.entry.aws_lambda, s3purge.metrics\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tqdm' or m.startswith('s3purge.entry.cli')))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert found.strip() == "[]"


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key.replace(" ", "+")}},
            }
        ]
    }


@pytest.fixture(autouse=True)
def _no_profile_leak() -> None:
    assert "AWS_PROFILE" not in os.environ


def test_a_bulk_send_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    with serving(Cache()) as cache:
        path = http_config(tmp_path, cache.url)
        keys = [arg for n in range(40) for arg in ("--key", f"site/public/{n}.html")]
        primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 wide
        with os.fdopen(primary, "rb", buffering=0) as terminal:
            process = subprocess.Popen(
                [sys.executable, "-m", "s3purge", "purge", "--config", str(path), "--cdn", "edge", "--send", *keys],
                stdout=subprocess.DEVNULL, stderr=secondary, env={**os.environ, "PURGE_TOKEN": TOKEN},
            )  # fmt: skip
            os.close(secondary)
            shown = _read_all(terminal)
            assert process.wait(timeout=60) == 0

    assert len(cache.requests) == 40
    assert "purging:   0%|" in shown and "0/40 [" in shown  # drawn at once; later redraws depend on timing
    assert "summary: 40 item(s) in 40 batch(es): 40 ok, 0 failed" in shown


def _read_all(terminal: Any) -> str:
    chunks = []
    while True:
        try:
            chunk = terminal.read(4096)
        except OSError:  # the other side closed: Linux reports EIO
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


ONE_DOCUMENT_CASES = {
    # success, where it is cheap (nothing sent, nothing on AWS)
    "plan": (["plan", "site/public/a.html"], 0),
    "replay dry run": (["replay", "{events}", "--dry-run"], 0),
    "purge dry run": (["purge", "--cdn", "edge", "--key", "site/public/a.html", "--dry-run"], 0),
    "config check": (["config", "check", "{config}"], 0),
    "config migrate": (["config", "migrate", "{legacy}", "{new}"], 0),
    "config migrate to stdout": (["config", "migrate", "{legacy}", "-"], 0),
    # usage errors: at the root, in each command, and in the nested group's commands
    "no such command": (["nosuch"], 2),
    "root option": (["--bogus"], 2),
    "worker": (["worker"], 2),
    "plan usage": (["plan", "--bogus"], 2),
    "replay usage": (["replay"], 2),
    "purge usage": (["purge", "site/public/a.html"], 2),
    "redrive usage": (["redrive"], 2),
    "config without a command": (["config"], 2),
    "config check usage": (["config", "check", "a.yml", "b.yml"], 2),
    "config migrate missing NEW": (["config", "migrate", "{legacy}"], 2),
    "config migrate existing NEW": (["config", "migrate", "{legacy}", "{config}"], 2),
    "demo usage": (["demo", "--bogus"], 2),
    "deploy usage": (["deploy", "--bogus"], 2),
    "destroy usage": (["destroy", "--bogus"], 2),
    "template usage": (["template", "--bogus"], 2),
}


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("case", sorted(ONE_DOCUMENT_CASES))
def test_every_command_prints_exactly_one_json_document(tmp_path: Path, case: str, where: str) -> None:
    path = http_config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "legacy.yml").write_text(SAMPLE.read_text())
    (tmp_path / "events.json").write_text(json.dumps(s3_event("site", "public/a.html")))
    names = {"config": path, "legacy": tmp_path / "legacy.yml", "events": tmp_path / "events.json"}
    args, code = ONE_DOCUMENT_CASES[case]
    args = [arg.format(**names, new=tmp_path / f"new-{where}.yml") for arg in args]
    json_args = ["--output", "json"]

    given = [*json_args, *args] if where == "before" else [*args, *json_args]
    result = run("--config", str(path), *given, env={"PURGE_TOKEN": TOKEN})

    assert result.exit_code == code, result.output
    assert len(result.stdout.splitlines()) == 1, result.stdout  # one document, on one line
    doc = document(result)
    assert ("error" in doc) == (code == 2)
