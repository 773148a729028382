"""deploy / destroy against the moto server: every resource, merged notifications, dry runs."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from s3purge import config as config_module
from s3purge.deploy import DeployError, Options, iam, preflight, stack, teardown
from s3purge.deploy.aws import Aws
from s3purge.deploy.package import Package
from tests.deploy import moto_gaps
from tests.deploy.conftest import drain, notifications, others, snapshot, write_config

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:s3purge-events"
Build = Callable[[Path], Package]


class Said(list[str]):
    """Collects deploy's output lines."""

    def __call__(self, line: str) -> None:
        self.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self)


def run_deploy(account: Aws, config: Path, build: Build, **options: Any) -> Said:
    said = Said()
    dry_run = options.pop("dry_run", False)
    loaded = config_module.load(config)
    stack.deploy(loaded, Options(**options), build(config), account, said, dry_run=dry_run)
    return said


def run_destroy(account: Aws, dry_run: bool = False, name: str = "s3purge", **options: Any) -> Said:
    said = Said()
    teardown.destroy(account, name, said, dry_run=dry_run, **options)
    return said


def ours(configuration: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for entries in configuration.values() for e in entries if e["Id"].startswith("s3purge:")]


def test_deploy_creates_every_resource(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    said = run_deploy(account, config_file, quick_package)
    assert "stack s3purge: CREATE_COMPLETE" in said.text
    assert "deployed s3purge" in said.text

    lam = getattr(boto, "lambda")
    function = lam.get_function(FunctionName="s3purge")["Configuration"]
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "s3purge.entry.aws_lambda.handler"
    assert function["Environment"]["Variables"] == {
        "config_file": "multicdn.config.yml",
        "debug": "false",
        "S3PURGE_INSTANCES": "2",
    }
    # moto's CloudFormation drops Architectures, so the deployed template is the witness here.
    deployed = boto.cloudformation.get_template(StackName="s3purge")["TemplateBody"]  # boto3 parses it
    assert deployed["Resources"]["Function"]["Properties"]["Architectures"] == ["arm64"]

    role_name = function["Role"].rsplit("/", 1)[1]
    assert boto.iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    (policy_name,) = boto.iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = boto.iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):  # moto returns a policy made by CloudFormation as Python's repr
        document = ast.literal_eval(document)
    granted = {s["Sid"]: (s["Action"], s["Resource"]) for s in document["Statement"]}
    queue = QUEUE_ARN
    assert granted == {
        "WriteOwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/s3purge:*",
        ),
        "ConsumeOwnQueue": (
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            queue,
        ),
        "RequeueNarrowedRetries": (["sqs:SendMessage", "sqs:GetQueueUrl"], queue),
        "DeadLetterPermanentFailures": ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:s3purge-dlq"),
        "ReadConfiguredParameters": (
            "ssm:GetParameters",
            ["arn:aws:ssm:us-east-1:123456789012:parameter/s3purge/varnish/token"],
        ),
        "ReadConfiguredSecrets": (
            "secretsmanager:GetSecretValue",
            ["arn:aws:secretsmanager:us-east-1:123456789012:secret:s3purge/fastly-??????"],
        ),
        "DecryptConfiguredSecrets": ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/*"),
        "InvalidateConfiguredDistributions": (
            "cloudfront:CreateInvalidation",
            [
                "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE1",
                "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE2",
            ],
        ),
    }

    moto_gaps.fill(account)  # moto skips queue policies and alarms: made from the deployed template
    urls = boto.sqs.list_queues()["QueueUrls"]
    events_url = next(u for u in urls if u.endswith("/s3purge-events"))
    attributes = boto.sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:s3purge-dlq",
        "maxReceiveCount": 5,
    }
    assert attributes["VisibilityTimeout"] == "360"
    tls_only, statement = json.loads(attributes["Policy"])["Statement"]
    assert tls_only["Effect"] == "Deny" and tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == ["arn:aws:s3:::media", "arn:aws:s3:::site"]
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"

    (mapping,) = lam.list_event_source_mappings(FunctionName="s3purge")["EventSourceMappings"]
    assert mapping["EventSourceArn"] == queue
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumBatchingWindowInSeconds"] == 5
    scaling = deployed["Resources"]["EventSourceMapping"]["Properties"]["ScalingConfig"]  # moto drops it
    assert mapping.get("ScalingConfig", scaling) == scaling == {"MaximumConcurrency": 2}
    dlq_url = next(u for u in urls if u.endswith("/s3purge-dlq"))
    dlq = boto.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    # moto's SQS has no RedriveAllowPolicy: the deployed template is the witness (it names the events queue).
    allow = deployed["Resources"]["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    (dlq_tls_only,) = json.loads(dlq["Policy"])["Statement"]
    assert dlq_tls_only["Sid"] == "TlsOnly" and dlq_tls_only["Effect"] == "Deny"

    (group,) = [g for g in boto.logs.describe_log_groups()["logGroups"] if g["logGroupName"] == "/aws/lambda/s3purge"]
    assert group["retentionInDays"] == 14

    alarms = {a["AlarmName"]: a for a in boto.cloudwatch.describe_alarms()["MetricAlarms"]}
    assert alarms["s3purge-function-errors"]["Dimensions"] == [{"Name": "FunctionName", "Value": "s3purge"}]
    assert alarms["s3purge-dead-letters"]["Dimensions"] == [{"Name": "QueueName", "Value": "s3purge-dlq"}]

    (artifacts,) = [b["Name"] for b in boto.s3.list_buckets()["Buckets"] if b["Name"].startswith("s3purge-artifacts")]
    assert all(boto.s3.get_public_access_block(Bucket=artifacts)["PublicAccessBlockConfiguration"].values())

    (entry,) = ours(notifications(boto, "site"))
    assert entry["QueueArn"] == queue
    assert entry["Events"] == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert entry["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "public/"}]
    (media,) = ours(notifications(boto, "media"))
    assert media["Filter"]["Key"]["FilterRules"] == [{"Name": "suffix", "Value": ".jpg"}]


def test_an_upload_lands_on_the_deployed_queue(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    run_deploy(account, config_file, quick_package)
    url = boto.sqs.get_queue_url(QueueName="s3purge-events")["QueueUrl"]
    boto.s3.put_object(Bucket="site", Key="public/new page.html", Body=b"x")
    boto.s3.put_object(Bucket="site", Key="private/skip.html", Body=b"x")  # outside every route's prefix
    bodies = [m["Body"] for m in boto.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    keys = [unquote_plus(r["s3"]["object"]["key"]) for b in bodies for r in json.loads(b).get("Records", [])]
    assert keys == ["public/new page.html"]


def test_foreign_notifications_survive_deploy_redeploy_and_destroy(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    before = notifications(boto, "site")
    expected = others(before)
    assert expected == {
        "QueueConfigurations": ["audit"],
        "TopicConfigurations": ["uploads"],
        "LambdaFunctionConfigurations": ["thumbs"],
    }
    run_deploy(account, config_file, quick_package)
    assert others(notifications(boto, "site")) == {**expected, "QueueConfigurations": ["audit"]}
    assert len(ours(notifications(boto, "site"))) == 1
    run_deploy(account, write_config(config_file, prefix="www/"), quick_package, trigger="direct")
    after = notifications(boto, "site")
    assert others(after) == expected
    (entry,) = ours(after)
    assert entry["LambdaFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:s3purge"
    run_destroy(account)
    assert notifications(boto, "site") == before  # exactly as the user had it


def test_redeploy_after_a_config_change_updates_in_place(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    run_deploy(account, config_file, quick_package)
    lam = getattr(boto, "lambda")
    first = lam.get_function(FunctionName="s3purge")["Configuration"]
    shape = snapshot(boto)

    said = run_deploy(account, write_config(config_file, prefix="www/"), quick_package, debug=True)
    assert "~ Function code: new package" in said.text
    assert "stack s3purge: UPDATE_COMPLETE" in said.text
    second = lam.get_function(FunctionName="s3purge")["Configuration"]
    assert second["CodeSha256"] != first["CodeSha256"]
    assert second["Environment"]["Variables"]["debug"] == "true"
    assert second["Role"] == first["Role"]
    now = snapshot(boto)
    assert [f for f, _ in now["functions"]] == [f for f, _ in shape["functions"]] == ["s3purge"]
    assert now["queues"].keys() == shape["queues"].keys()
    assert now["roles"] == shape["roles"]
    for part in ("mappings", "log_groups", "alarms", "topics"):
        assert now[part] == shape[part], part
    assert now["stacks"] == [["s3purge", "UPDATE_COMPLETE"]]
    (entry,) = ours(notifications(boto, "site"))
    assert entry["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "www/"}]

    again = run_deploy(account, config_file.parent / "multicdn.config.yml", quick_package, debug=True)
    assert "stack: no changes" in again.text and "package already uploaded" in again.text


def test_dropping_a_bucket_on_redeploy_unhooks_it(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    run_deploy(account, config_file, quick_package)
    assert ours(notifications(boto, "media"))
    said = run_deploy(account, config_file, quick_package, buckets=("site",))
    assert ours(notifications(boto, "media")) == []
    assert "bucket media: removed our notification entry" in said.text
    assert ours(notifications(boto, "site"))


def test_destroy_leaves_nothing_of_ours_and_everything_of_the_user(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    boto.s3.put_object(Bucket="site", Key="public/keep.html", Body=b"mine")
    # S3 sends a test event to every destination whenever the configuration is written,
    # so the user's queue gains messages; everything else must be exactly as it was.
    before = snapshot(boto, counts=False)
    run_deploy(account, config_file, quick_package, alarm_email="ops@example.test")
    run_deploy(account, write_config(config_file, prefix="www/"), quick_package, alarm_email="ops@example.test")
    assert snapshot(boto, counts=False) != before
    drain(boto, "s3purge-events")  # S3's test events, which the function would have consumed
    said = run_destroy(account)
    assert snapshot(boto, counts=False) == before
    assert "destroyed s3purge" in said.text
    assert "deleted 2 package(s)" in said.text
    assert run_destroy(account).text == "nothing to destroy: no stack named s3purge in us-east-1"


def test_dry_runs_change_nothing(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    before = snapshot(boto)
    said = run_deploy(account, config_file, quick_package, dry_run=True)
    assert snapshot(boto) == before
    assert "+ Function (AWS::Lambda::Function)" in said.text
    assert "+ QueuePolicy (AWS::SQS::QueuePolicy)" in said.text
    assert "bucket site: would set s3purge:s3purge -> " + QUEUE_ARN in said.text
    assert "3 other(s) kept" in said.text
    assert said[-1] == "dry run: nothing was created, changed or removed"

    run_deploy(account, config_file, quick_package)
    deployed = snapshot(boto)
    change_sets = boto.cloudformation.list_change_sets(StackName="s3purge")["Summaries"]
    said = run_deploy(account, write_config(config_file, prefix="www/"), quick_package, dry_run=True, trigger="direct")
    assert snapshot(boto) == deployed
    assert "~ Function code: new package" in said.text
    assert "would set s3purge:s3purge -> arn:aws:lambda:us-east-1:123456789012:function:s3purge" in said.text
    assert boto.cloudformation.list_change_sets(StackName="s3purge")["Summaries"] == change_sets  # preview deleted

    said = run_destroy(account, dry_run=True)
    assert snapshot(boto) == deployed
    assert "- Function (AWS::Lambda::Function) s3purge" in said.text
    assert "- stack s3purge (CREATE_COMPLETE) and its resources:" in said.text
    assert "would remove from us-east-1, account 123456789012:" in said
    assert said[0].startswith("warning: s3purge-events holds 2 message(s): destroying would lose them.")
    assert said[-1] == "dry run: nothing was removed"


def test_direct_trigger_lets_only_the_buckets_invoke(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    run_deploy(account, config_file, quick_package, trigger="direct", buckets=("site",))
    policy = json.loads(getattr(boto, "lambda").get_policy(FunctionName="s3purge")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == "arn:aws:s3:::site"
    assert statement["Condition"]["StringEquals"]["AWS:SourceAccount"] == "123456789012"
    assert "QueueUrls" not in boto.sqs.list_queues(QueueNamePrefix="s3purge-events")


def test_aws_errors_name_the_resource(account: Aws, boto: Any, config_file: Path, quick_package: Build) -> None:
    boto.s3.create_bucket(Bucket="site")  # but no bucket "media"
    before = snapshot(boto)
    with pytest.raises(DeployError, match=r"cannot read the notification configuration of bucket media.*NoSuchBucket"):
        run_deploy(account, config_file, quick_package)
    assert snapshot(boto) == before


def test_plaintext_secrets_are_warned_about_and_environment_ones_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "cdns:\n  v: {vendor: http, endpoints: ['http://127.0.0.1:9'], headers: "
        "{X-Token: hunter2, X-Env: {env: PURGE_TOKEN}}}\n"
        "buckets:\n  b: [{cdn: v, hosts: [a.example]}]\n"
    )
    said = Said()
    preflight.warn_about_secrets(config_module.load(path), said)
    assert said == [
        "warning: cdns.v.headers.X-Token is a plaintext secret; it will be inside the Lambda package. "
        "Write {ssm: NAME} or {secretsmanager: ID} instead."
    ]
    assert "hunter2" not in said.text
    with pytest.raises(DeployError, match=r"cdns.v.headers.X-Env reads environment variable PURGE_TOKEN") as refused:
        preflight.refuse_unusable_secrets(config_module.load(path))
    assert "{ssm: /s3purge/NAME}" in str(refused.value)
    assert iam.secret_fields(config_module.load(path))[0][0] == "cdns.v.headers.X-Token"


def test_an_entry_s3_would_refuse_next_to_ours_stops_deploy_before_anything_is_created(
    account: Aws, boto: Any, buckets: dict[str, str], config_file: Path, quick_package: Build
) -> None:
    catch_all = {"Id": "everything", "QueueArn": buckets["queue"], "Events": ["s3:ObjectCreated:Put"]}
    boto.s3.put_bucket_notification_configuration(
        Bucket="media", NotificationConfiguration={"QueueConfigurations": [catch_all]}
    )
    before = snapshot(boto)
    with pytest.raises(DeployError) as refused:
        run_deploy(account, config_file, quick_package)
    assert str(refused.value).splitlines()[:2] == [
        "S3 allows one destination per event type and key range:",
        f"  bucket media already sends these events for overlapping keys to: everything -> {buckets['queue']} "
        "(ObjectCreated:Put)",
    ]
    assert snapshot(boto) == before
    run_deploy(account, config_file, quick_package, buckets=("site",))  # the other bucket is fine
