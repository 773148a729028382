"""The template: least-privilege role statement by statement, triggers, alarms, cfn-lint."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from s3purge import config as config_module
from s3purge.deploy import DeployError, Options, template
from s3purge.deploy import notifications as notes
from s3purge.providers import BUILTIN

SUB = "Fn::Sub"


def role_statements(built: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (policy,) = built["Resources"]["Role"]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def test_the_role_grants_only_what_s3purge_needs_statement_by_statement(loaded: config_module.Config) -> None:
    built = template.build(loaded, Options(name="purger"))
    role = built["Resources"]["Role"]["Properties"]
    assert "ManagedPolicyArns" not in role  # no FullAccess (or any) managed policy
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    statements = role_statements(built)
    queue = {"Fn::GetAtt": ["Queue", "Arn"]}
    assert statements.pop("WriteOwnLogs") == {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": {SUB: "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/purger:*"},
    }
    assert statements.pop("ConsumeOwnQueue") == {
        "Sid": "ConsumeOwnQueue",
        "Effect": "Allow",
        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
        "Resource": queue,
    }
    assert statements.pop("RequeueNarrowedRetries") == {
        "Sid": "RequeueNarrowedRetries",
        "Effect": "Allow",
        "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
        "Resource": queue,
    }
    assert statements.pop("ReadConfiguredParameters") == {
        "Sid": "ReadConfiguredParameters",
        "Effect": "Allow",
        "Action": "ssm:GetParameters",
        "Resource": [
            {SUB: "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/s3purge/varnish/token"}
        ],
    }
    assert statements.pop("ReadConfiguredSecrets") == {
        "Sid": "ReadConfiguredSecrets",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": [
            {SUB: "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:s3purge/fastly-??????"}
        ],
    }
    assert statements.pop("DecryptConfiguredSecrets") == {
        "Sid": "DecryptConfiguredSecrets",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": {SUB: "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"},
        "Condition": {
            "StringEquals": {
                "kms:ViaService": [
                    {SUB: "ssm.${AWS::Region}.amazonaws.com"},
                    {SUB: "secretsmanager.${AWS::Region}.amazonaws.com"},
                ]
            }
        },
    }
    assert statements.pop("DeadLetterPermanentFailures") == {
        "Sid": "DeadLetterPermanentFailures",
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
    }
    assert statements.pop("InvalidateConfiguredDistributions") == {
        "Sid": "InvalidateConfiguredDistributions",
        "Effect": "Allow",
        "Action": "cloudfront:CreateInvalidation",  # GetInvalidation only for accounts that `wait`
        "Resource": [
            {SUB: "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/E2EXAMPLE1"},
            {SUB: "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/E2EXAMPLE2"},
        ],
    }
    assert statements == {}, "a statement nobody reviewed"


def allowed(node: Any) -> list[dict[str, Any]]:
    """Every Allow statement anywhere in a template."""
    if isinstance(node, list):
        return [s for item in node for s in allowed(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("Effect") == "Allow" else []
    return found + [s for value in node.values() for s in allowed(value)]


# A wildcard in a resource is only acceptable where it stays inside what s3purge owns or names.
SCOPED_WILDCARDS = [
    re.compile(r"log-group:/aws/lambda/[\w-]+:\*"),  # the streams of our own function's log group
    re.compile(r"secret:[^*?]+-\?{6}"),  # Secrets Manager's random suffix after a configured name
]
VIA_SERVICE_WILDCARD = re.compile(r"key/\*")  # any KMS key, but only through the services named in a condition


def wildcard_problems(statement: dict[str, Any]) -> list[str]:
    """What in one Allow statement grants more than named resources (empty: nothing)."""
    problems = [f"{key} is never least privilege" for key in ("NotAction", "NotResource") if key in statement]
    actions = statement.get("Action", [])
    for action in [actions] if isinstance(actions, str) else actions:
        if "*" in action or "?" in action or ":" not in action:
            problems.append(f"action {action}")
    if "Principal" in statement:  # a trust or queue policy: its resource is the thing it is attached to
        return problems + [f"principal {statement['Principal']}"] * ("*" in json.dumps(statement["Principal"]))
    resources = statement.get("Resource")
    assert resources, f"an Allow without a resource: {statement}"
    for resource in resources if isinstance(resources, list) else [resources]:
        problems += _resource_problems(resource, statement.get("Condition", {}))
    return problems


def _resource_problems(resource: Any, condition: dict[str, Any]) -> list[str]:
    if isinstance(resource, dict) and set(resource) <= {"Fn::GetAtt", "Ref"}:
        return []  # a resource of this stack
    arn = resource[SUB] if isinstance(resource, dict) else resource
    assert isinstance(arn, str), resource
    parts = re.sub(r"\$\{AWS::(\w+)\}", r"<\1>", arn).split(":", 5)  # ${AWS::Partition} has colons
    if arn == "*" or len(parts) < 6:
        return [f"resource {arn}"]
    account, name = parts[4], parts[5]
    if account != "<AccountId>" and not re.fullmatch(r"\d{12}", account):
        return [f"resource {arn}: not one account"]
    if ("*" not in name and "?" not in name) or any(p.fullmatch(name) for p in SCOPED_WILDCARDS):
        return []
    if VIA_SERVICE_WILDCARD.fullmatch(name) and condition.get("StringEquals", {}).get("kms:ViaService"):
        return []
    return [f"resource {arn}: a wildcard outside what s3purge owns"]


def test_no_statement_grants_a_wildcard_beyond_our_own_resources(loaded: config_module.Config) -> None:
    for trigger in ("sqs", "direct"):
        statements = allowed(template.build(loaded, Options(trigger=trigger)))
        assert len(statements) > 3
        assert {s.get("Sid", "trust"): wildcard_problems(s) for s in statements} == {
            s.get("Sid", "trust"): [] for s in statements
        }


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Action": "s3:*", "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}}, "action s3:*"),
        ({"Action": "sqs:SendMessage", "Resource": "*"}, "resource *"),
        ({"Action": "kms:Decrypt", "Resource": "arn:aws:kms:eu-west-1:123456789012:key/*"}, "outside"),
        ({"Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:eu-west-1:*:parameter/x"}, "not one account"),
        ({"Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:r:123456789012:parameter/s3purge/*"}, "outside"),
        ({"Action": "logs:PutLogEvents", "Resource": {SUB: "arn:aws:logs:r:${AWS::AccountId}:log-group:*"}}, "outside"),
        ({"Action": "sqs:SendMessage", "Principal": {"AWS": "*"}}, "principal"),
    ],
)
def test_the_wildcard_check_catches_broad_grants(statement: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in wildcard_problems(statement))


def test_get_invalidation_only_where_wait_is_on(tmp_path: Path) -> None:
    path = tmp_path / "cf.yml"
    path.write_text(
        "cdns:\n  a: {vendor: cloudfront, distribution_ids: [EWAITED]}\n"
        "  b: {vendor: cloudfront, distribution_ids: [ENOWAIT]}\n"
        "buckets:\n  s: [{cdn: a, hosts: [a.example]}, {cdn: b, hosts: [b.example]}]\n"
    )
    path.write_text(path.read_text().replace("[EWAITED]}", "[EWAITED], wait: true}"))
    statements = role_statements(template.build(config_module.load(path), Options()))
    arn = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/"
    assert statements["InvalidateConfiguredDistributions"]["Resource"] == [
        {SUB: arn + "ENOWAIT"},
        {SUB: arn + "EWAITED"},
    ]
    assert statements["WaitForInvalidations"]["Action"] == "cloudfront:GetInvalidation"
    assert statements["WaitForInvalidations"]["Resource"] == [{SUB: arn + "EWAITED"}]


@pytest.mark.parametrize("name", ["bad name!", "", "9lives", "a" * 65, "under_score", "dollar${AWS::Region}"])
def test_names_aws_would_refuse_halfway_are_refused_first(loaded: config_module.Config, name: str) -> None:
    with pytest.raises(DeployError, match="invalid name"):
        template.build(loaded, Options(name=name))


def test_a_config_without_secret_references_or_cloudfront_gets_no_such_grants(tmp_path: Path) -> None:
    path = tmp_path / "plain.yml"
    path.write_text(
        "cdns:\n  v: {vendor: http, endpoints: ['http://127.0.0.1:9'], headers: {X-Token: inline-value}}\n"
        "buckets:\n  b: [{cdn: v, hosts: [a.example]}]\n"
    )
    statements = role_statements(template.build(config_module.load(path), Options(trigger="direct")))
    assert sorted(statements) == ["DeadLetterFailedEvents", "WriteOwnLogs"]
    assert statements["DeadLetterFailedEvents"]["Action"] == "sqs:SendMessage"
    assert statements["DeadLetterFailedEvents"]["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_secret_ids_given_as_arns_are_granted_exactly(tmp_path: Path) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:cdn-AbCdEf"
    path = tmp_path / "arn.yml"
    path.write_text(
        "cdns:\n  v: {vendor: http, endpoints: ['http://127.0.0.1:9'], headers: "
        f"{{A: {{secretsmanager: '{arn}'}}, B: {{ssm: 'plain-name'}}}}}}\n"
        "buckets:\n  b: [{cdn: v, hosts: [a.example]}]\n"
    )
    statements = role_statements(template.build(config_module.load(path), Options()))
    assert statements["ReadConfiguredSecrets"]["Resource"] == [arn]
    assert statements["ReadConfiguredParameters"]["Resource"] == [
        {SUB: "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/plain-name"}
    ]


def test_the_function_queue_and_mapping(loaded: config_module.Config) -> None:
    resources = template.build(loaded, Options(name="p", timeout=30, batch_window=7))["Resources"]
    function = resources["Function"]
    assert function["DependsOn"] == "LogGroup"  # else Lambda makes the group itself, without retention
    assert function["Properties"]["Runtime"] == "python3.12"
    assert function["Properties"]["Architectures"] == ["arm64"]
    assert function["Properties"]["Handler"] == "s3purge.entry.aws_lambda.handler"
    assert function["Properties"]["Environment"] == {
        "Variables": {"config_file": "multicdn.config.yml", "debug": "false", "S3PURGE_INSTANCES": "2"}
    }
    assert "ReservedConcurrentExecutions" not in function["Properties"]  # the mapping caps instances
    assert function["Properties"]["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
    queue = resources["Queue"]["Properties"]
    assert queue["VisibilityTimeout"] == 180  # six times the function timeout, as AWS advises
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    mapping = resources["EventSourceMapping"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["MaximumBatchingWindowInSeconds"] == 7
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    dead = resources["DeadLetterQueue"]["Properties"]
    assert dead["RedriveAllowPolicy"] == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [{SUB: "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:p-events"}],
    }
    for queue, policy in (("Queue", "QueuePolicy"), ("DeadLetterQueue", "DeadLetterQueuePolicy")):
        properties = resources[policy]["Properties"]
        assert properties["Queues"] == [{"Ref": queue}]
        assert properties["PolicyDocument"]["Statement"][0] == {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    statement = resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][1]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnLike": {
            "aws:SourceArn": [{SUB: "arn:${AWS::Partition}:s3:::media"}, {SUB: "arn:${AWS::Partition}:s3:::site"}]
        },
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    assert resources["LogGroup"]["Properties"] == {"LogGroupName": "/aws/lambda/p", "RetentionInDays": 14}


def test_direct_trigger_permits_only_the_buckets_of_this_account(loaded: config_module.Config) -> None:
    resources = template.build(loaded, Options(trigger="direct", buckets=("site",)))["Resources"]
    assert "Queue" not in resources and "EventSourceMapping" not in resources
    assert resources["InvokePermission0"]["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": ["Function", "Arn"]},
        "Principal": "s3.amazonaws.com",
        "SourceArn": {SUB: "arn:${AWS::Partition}:s3:::site"},
        "SourceAccount": {"Ref": "AWS::AccountId"},
    }
    assert [k for k in resources if k.startswith("InvokePermission")] == ["InvokePermission0"]
    assert resources["Function"]["Properties"]["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    }
    assert resources["Function"]["Properties"]["ReservedConcurrentExecutions"] == 2  # no mapping to cap
    assert resources["DeadLetterQueue"]["Properties"]["RedriveAllowPolicy"] == {"redrivePermission": "denyAll"}


def test_alarms_watch_errors_and_dead_letters_and_can_mail(loaded: config_module.Config) -> None:
    resources = template.build(loaded, Options(alarm_email="ops@example.test"))["Resources"]
    errors, dead = resources["ErrorsAlarm"]["Properties"], resources["DeadLetterAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "Function"}}]
    assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert errors["AlarmActions"] == dead["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert resources["AlarmTopic"]["Properties"]["Subscription"] == [
        {"Protocol": "email", "Endpoint": "ops@example.test"}
    ]
    assert "AlarmTopic" not in template.build(loaded, Options())["Resources"]


def test_a_bucket_without_routes_is_refused(loaded: config_module.Config) -> None:
    with pytest.raises(DeployError, match=r"bucket\(s\) nope have no routes .*configured: media, site"):
        template.build(loaded, Options(buckets=("site", "nope")))


@pytest.mark.parametrize(
    "options",
    [Options(alarm_email="ops@example.test"), Options(trigger="direct", arch="x86_64", runtime="python3.13")],
    ids=["sqs", "direct"],
)
def test_the_template_passes_cfn_lint(loaded: config_module.Config, options: Options) -> None:
    from cfnlint.api import lint

    for fmt in ("json", "yaml"):
        matches = lint(template.dump(template.build(loaded, options), fmt), regions=["us-east-1", "eu-west-1"])
        assert [str(m) for m in matches] == []


def test_our_notification_entry_covers_every_route_of_the_bucket(loaded: config_module.Config) -> None:
    kind, entry = notes.entry_for("p", "sqs", "arn:q", loaded.routes("site"))
    assert kind == "QueueConfigurations"
    assert entry == {
        "Id": "s3purge:p",
        "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "public/"}]}},  # public/ and public/assets/
        "QueueArn": "arn:q",
    }
    kind, entry = notes.entry_for("p", "direct", "arn:f", loaded.routes("media"))
    assert kind == "LambdaFunctionConfigurations"
    assert entry["Filter"] == {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}}


def test_merging_keeps_every_foreign_entry_and_replaces_only_ours() -> None:
    current = {
        "QueueConfigurations": [
            {"Id": "theirs", "QueueArn": "arn:a", "Events": ["s3:ObjectCreated:*"]},
            {"Id": "s3purge:p", "QueueArn": "arn:old", "Events": ["s3:ObjectCreated:*"]},
            {"Id": "s3purge:p-two", "QueueArn": "arn:other-stack", "Events": ["s3:ObjectRemoved:*"]},
        ],
        "TopicConfigurations": [{"Id": "t", "TopicArn": "arn:t", "Events": ["s3:ObjectRemoved:*"]}],
        "EventBridgeConfiguration": {},
    }
    ours = ("LambdaFunctionConfigurations", {"Id": "s3purge:p", "LambdaFunctionArn": "arn:f", "Events": []})
    assert notes.merged(current, "p", ours) == {
        "QueueConfigurations": [current["QueueConfigurations"][0], current["QueueConfigurations"][2]],
        "TopicConfigurations": current["TopicConfigurations"],
        "LambdaFunctionConfigurations": [ours[1]],
        "EventBridgeConfiguration": {},
    }
    assert notes.merged(current, "p", None)["QueueConfigurations"] == [
        current["QueueConfigurations"][0],
        current["QueueConfigurations"][2],
    ]


def _entry(events: list[str], prefix: str = "", suffix: str = "") -> dict[str, Any]:
    rules = [{"Name": n, "Value": v} for n, v in (("prefix", prefix), ("suffix", suffix)) if v]
    return {
        "Id": "theirs",
        "QueueArn": "arn:q",
        "Events": events,
        **({"Filter": {"Key": {"FilterRules": rules}}} if rules else {}),
    }


@pytest.mark.parametrize(
    ("theirs", "clash"),
    [
        (_entry(["s3:ObjectCreated:Put"]), True),  # a wildcard covers Put; no filter covers every key
        (_entry(["s3:ObjectCreated:*"], prefix="public/img/"), True),  # inside our prefix
        (_entry(["s3:ObjectCreated:*"], prefix="pub"), True),  # around our prefix
        (_entry(["s3:ObjectCreated:*"], suffix=".png"), True),  # our entry has no suffix
        (_entry(["s3:ObjectRemoved:Delete"], prefix="images/"), False),
        (_entry(["s3:ObjectRestore:*"]), False),
        (_entry(["s3:ObjectCreated:*"], prefix="public/", suffix=".png"), True),
    ],
)
def test_overlaps_s3_would_refuse_are_found_before_writing(theirs: dict[str, Any], clash: bool) -> None:
    ours = (
        "QueueConfigurations",
        _entry(["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], prefix="public/") | {"Id": "s3purge:p"},
    )
    found = notes.conflicts({"QueueConfigurations": [theirs]}, "p", ours)
    assert bool(found) is clash
    narrow = (
        "QueueConfigurations",
        _entry(["s3:ObjectCreated:*"], prefix="public/", suffix=".jpg") | {"Id": "s3purge:p"},
    )
    assert not notes.conflicts({"QueueConfigurations": [_entry(["s3:ObjectCreated:*"], suffix=".png")]}, "p", narrow)


def test_deploy_names_no_vendor() -> None:
    """What a vendor needs from AWS comes from its provider (aws_grants): no vendor's name, in code
    or text, anywhere in deploy/. `http` is matched whole only (it is also a URL scheme)."""
    named = re.compile("|".join(v for v in BUILTIN if v != "http"), re.IGNORECASE)
    found = []
    for path in sorted(Path(template.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            words = [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []
            words += [node.id] if isinstance(node, ast.Name) else []
            words += [node.name] if isinstance(node, ast.FunctionDef | ast.ClassDef) else []
            words += [node.attr] if isinstance(node, ast.Attribute) else []
            found += [f"{path.name}:{node.lineno}: {w!r}" for w in words if w == "http" or named.search(w)]
    assert found == []
