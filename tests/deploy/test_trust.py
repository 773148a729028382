"""Issue 10's cases on the moto server: refusals before any side effect, destroy exactly what
deploy made, asks first, notifications that survive a concurrent writer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from s3purge import config as config_module
from s3purge.deploy import DeployError, Options, preflight, stack, teardown
from s3purge.deploy import notifications as notes
from s3purge.deploy.aws import Aws
from s3purge.deploy.package import Package
from s3purge.entry.cli import main
from tests.deploy.conftest import drain, notifications, others, snapshot
from tests.deploy.test_deploy import Said, ours, run_deploy, run_destroy

Build = Callable[[Path], Package]


def deploy_args(config_file: Path, quick_package: Build, *extra: str) -> list[str]:
    return ["deploy", "--config", str(config_file), "--package", str(quick_package(config_file).path), *extra]


UNWORKABLE: dict[str, tuple[Callable[[str], str], list[str], str]] = {
    "bad-name": (lambda text: text, ["--name", "bad name!"], "invalid name 'bad name!'"),
    "env-secret": (
        lambda text: text.replace("{ssm: /s3purge/varnish/token}", "{env: VARNISH_PURGE_TOKEN}"),
        [],
        "reads environment variable VARNISH_PURGE_TOKEN",
    ),
    "missing-parameter": (
        lambda text: text.replace("/s3purge/varnish/token}", "/s3purge/varnish/other}"),
        [],
        "ssm /s3purge/varnish/other does not exist in us-east-1",
    ),
}
"""How the config or the command is changed, and what the refusal says."""


@pytest.mark.parametrize("case", UNWORKABLE)
def test_what_cannot_work_on_lambda_is_refused_before_anything_is_made(
    boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build, case: str
) -> None:
    edit, extra, message = UNWORKABLE[case]
    config_file.write_text(edit(config_file.read_text()))
    before = snapshot(boto)
    for confirm in ([], ["--yes"]):  # the dry run refuses as well
        result = CliRunner().invoke(main, [*deploy_args(config_file, quick_package, *extra), *confirm, "--dry-run"])
        assert result.exit_code == 2 and message in result.output, result.output
    result = CliRunner().invoke(main, [*deploy_args(config_file, quick_package, *extra), "--yes"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert snapshot(boto) == before  # no package uploaded, no stack, no notification entry


def test_a_first_deploy_that_fails_leaves_nothing_behind(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    before = snapshot(boto)

    def meanwhile_a_log_group_appears(question: str) -> bool:
        boto.logs.create_log_group(logGroupName="/aws/lambda/s3purge")  # e.g. a function writing its first log
        return True

    loaded = config_module.load(config_file)
    said = Said()
    with pytest.raises(DeployError, match="execute the change set of stack s3purge"):
        stack.deploy(
            loaded, Options(), quick_package(config_file), account, said, confirm=meanwhile_a_log_group_appears
        )
    assert "nothing is left behind" in said.text
    boto.logs.delete_log_group(logGroupName="/aws/lambda/s3purge")
    assert snapshot(boto) == before


def test_a_leftover_log_group_is_found_before_anything_is_made(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    boto.logs.create_log_group(logGroupName="/aws/lambda/s3purge")
    before = snapshot(boto)
    with pytest.raises(DeployError, match=r"log group /aws/lambda/s3purge already exists"):
        run_deploy(account, config_file, quick_package)
    assert snapshot(boto) == before


def test_deploy_shows_the_changes_and_asks_first(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    before = snapshot(boto)
    questions: list[str] = []
    said = Said()
    loaded = config_module.load(config_file)
    package = quick_package(config_file)
    stack.deploy(loaded, Options(), package, account, said, confirm=lambda q: questions.append(q) is not None)
    assert questions == ["Deploy these changes?"]
    assert "+ Function (AWS::Lambda::Function)" in said.text
    assert "bucket site: will set s3purge:s3purge -> arn:aws:sqs:" in said.text
    assert said[-1] == "nothing was created, changed or removed"
    assert snapshot(boto) == before  # not even the empty stack of the change set is left


def test_destroy_refuses_while_messages_wait_and_asks_first(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    run_deploy(account, config_file, quick_package)
    drain(boto, "s3purge-events")
    dlq = boto.sqs.get_queue_url(QueueName="s3purge-dlq")["QueueUrl"]
    for n in range(3):
        boto.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"failed": n}))
    deployed = snapshot(boto)
    with pytest.raises(DeployError, match=r"s3purge-dlq holds 3 message\(s\): destroying would lose them"):
        run_destroy(account)
    said = run_destroy(account, force=True, confirm=lambda question: False)
    assert "- DeadLetterQueue (AWS::SQS::Queue)" in said.text and said[-1] == "nothing was removed"
    assert snapshot(boto) == deployed
    said = run_destroy(account, force=True)
    assert said[-1] == "destroyed s3purge"
    assert snapshot(boto)["stacks"] == []


def test_destroy_bucket_removes_only_our_entry_there(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    run_deploy(account, config_file, quick_package)
    deployed = snapshot(boto)
    result = CliRunner().invoke(main, ["destroy", "--bucket", "media", "--yes"])
    assert result.exit_code == 0, result.output
    assert ours(notifications(boto, "media")) == []
    now = snapshot(boto)
    assert now["stacks"] == deployed["stacks"] == [["s3purge", "CREATE_COMPLETE"]]
    assert now["queues"].keys() == deployed["queues"].keys() and now["functions"] == deployed["functions"]
    assert now["buckets"]["site"] == deployed["buckets"]["site"]  # the other bucket keeps its entry


def test_destroy_deletes_only_the_packages_deploy_uploaded(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    boto.s3.create_bucket(Bucket="team-artifacts")
    theirs = ["s3purge/terraform.tfstate", "s3purge/" + "0" * 64 + ".zip", "other/app.zip"]
    for key in theirs:  # the second looks like ours but deploy never uploaded it (no tag)
        boto.s3.put_object(Bucket="team-artifacts", Key=key, Body=b"theirs")
    loaded = config_module.load(config_file)
    stack.deploy(loaded, Options(), quick_package(config_file), account, Said(), artifact_bucket="team-artifacts")
    keys = [o["Key"] for o in boto.s3.list_objects_v2(Bucket="team-artifacts")["Contents"]]
    assert len(keys) == 4
    drain(boto, "s3purge-events")
    said = run_destroy(account)
    assert "deleted 1 package(s) under s3://team-artifacts/s3purge/" in said.text
    assert sorted(o["Key"] for o in boto.s3.list_objects_v2(Bucket="team-artifacts")["Contents"]) == sorted(theirs)


def test_an_entry_added_while_deploy_runs_survives(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    added = {"Id": "late", "QueueArn": buckets["queue"], "Events": ["s3:ObjectCreated:*"]}
    added["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "late/"}]}}

    def another_team_writes_meanwhile(question: str) -> bool:
        current = notifications(boto, "site")
        current["QueueConfigurations"].append(added)
        boto.s3.put_bucket_notification_configuration(Bucket="site", NotificationConfiguration=current)
        return True

    loaded = config_module.load(config_file)
    stack.deploy(loaded, Options(), quick_package(config_file), account, Said(), confirm=another_team_writes_meanwhile)
    after = notifications(boto, "site")
    assert others(after)["QueueConfigurations"] == ["audit", "late"]
    assert len(ours(after)) == 1


class StaleWriter:
    """A real S3 client; right after our first write, another writer puts back the copy it read
    before it (with an entry of its own added): the race a read-modify-write alone loses."""

    def __init__(self, s3: Any, bucket: str, entry: dict[str, Any]) -> None:
        self.s3, self.bucket, self.entry = s3, bucket, entry
        self.stale = notes.read(s3, bucket, "123456789012")
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)

    def put_bucket_notification_configuration(self, **request: Any) -> Any:
        answer = self.s3.put_bucket_notification_configuration(**request)
        if not self.raced:
            self.raced = True
            theirs = {**self.stale, "QueueConfigurations": [*self.stale.get("QueueConfigurations", []), self.entry]}
            self.s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration=theirs)
        return answer


def test_our_entry_is_merged_again_after_a_concurrent_write(boto: Any, buckets: dict[str, str]) -> None:
    entry = {"Id": "theirs-late", "QueueArn": buckets["queue"], "Events": ["s3:ObjectRemoved:*"]}
    entry["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "tmp/"}]}}
    ours_entry = notes.entry_for("s3purge", "sqs", buckets["queue"], [])
    ours_entry[1]["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "public/"}]}}
    racing = StaleWriter(boto.s3, "site", entry)
    events = notes.apply(racing, "site", "123456789012", "s3purge", ours_entry)
    assert racing.raced
    assert events == [
        "someone else changed the configuration while s3purge wrote it (our entry overwritten); merged again"
    ]
    after = notifications(boto, "site")
    assert others(after)["QueueConfigurations"] == ["audit", "theirs-late"]
    assert [e["Id"] for e in ours(after)] == ["s3purge:s3purge"]


def test_destroy_dry_run_warns_about_waiting_messages(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    run_deploy(account, config_file, quick_package)
    said = Said()
    teardown.destroy(account, "s3purge", said, dry_run=True)
    assert said[0].startswith("warning: s3purge-events holds")
    assert said[-1] == "dry run: nothing was removed"


def test_the_example_config_is_refused_with_what_to_do(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "multicdn.config.yml"
    result = CliRunner().invoke(main, ["deploy", "--config", str(example), "--dry-run"])
    assert result.exit_code == 2
    assert "reads environment variable VARNISH_PURGE_TOKEN" in result.output
    assert "{ssm: /s3purge/NAME}" in result.output


def test_a_call_larger_than_an_instances_share_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "ak.yml"
    path.write_text(
        "cdns:\n  ak: {vendor: akamai, host: a.purge.akamaiapis.net, client_token: {ssm: /t}, "
        "client_secret: {ssm: /s}, access_token: {ssm: /a}}\n"
        "buckets:\n  b: [{cdn: ak, hosts: [a.example]}]\n"
    )
    loaded = config_module.load(path)
    said = Said()
    preflight.warn_about_shares(loaded, Options(max_concurrency=2), said)
    assert said == []  # 5,000 objects a call fit half of Akamai's 10,000
    preflight.warn_about_shares(loaded, Options(max_concurrency=3), said)
    assert said == [
        "warning: cdns.ak: one call may carry 5000 items, more than each of 3 instances' share (3333) of the "
        "vendor's item limit; after a quiet spell every instance may send one such call at once. "
        "Set max_items: 3333 to rule it out."
    ]
