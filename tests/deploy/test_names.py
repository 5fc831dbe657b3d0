"""Resource names are defined once (playcount.core.resources + config defaults): the template,
the compose environment and the bootstrap (embedded and compose) must all agree with them.
"""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from playcount.api.config import ApiSettings
from playcount.core.config import Settings, load_settings
from playcount.core.resources import DLQ_SUFFIX, Resources, resources
from playcount.ops.bootstrap import notification_configuration
from playcount.runner.config import RunnerSettings
from playcount.validator.config import ValidatorSettings
from playcount.writer.config import WriterSettings
from tests.support.deploy import SERVICES, SPARK_STANDALONE, compose, template
from tests.support.sandbox import teardown

# the settings each compose service and ECS container reads its environment into (a service's own
# knobs live in its subclass of the shared Settings); others (Spark master, worker) read Settings
SETTINGS: dict[str, type[Settings]] = {
    "bootstrap": Settings,
    "ingest-validator": ValidatorSettings,
    "kpi-spark-runner": RunnerSettings,
    "dynamo-writer": WriterSettings,
    "query-api": ApiSettings,
}
# variables the compose file and the template set that are not Settings fields, on purpose
NOT_SETTINGS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "SPARK_LOCAL_HOSTNAME"}
PREFIX_FIELDS = {
    "Raw": "s3_raw_data_prefix",
    "Metadata": "s3_metadata_prefix",
    "Validated": "s3_validated_prefix",
    "Transformed": "s3_transformed_prefix",
    "Archive": "s3_archive_prefix",
    "Rejected": "s3_rejected_prefix",
    "ProcessingMetadata": "s3_processing_metadata_prefix",
}


@pytest.fixture(scope="module")
def defaults() -> Settings:
    return load_settings({})


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return template()


def resolve(value: Any, t: dict[str, Any]) -> Any:
    """Evaluate Ref / Fn::Sub / Fn::FindInMap / Fn::GetAtt(QueueName) with parameter defaults."""
    params = {k: str(v.get("Default", "")) for k, v in t["Parameters"].items()} | {"AWS::Region": "us-east-1"}
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), resources_ = next(iter(value.items())), t["Resources"]
        if fn == "Ref":
            if arg in params:
                return params[arg]
            props = resources_[arg]["Properties"]
            return resolve(props.get("BucketName") or props.get("TableName") or props.get("QueueName"), t)
        if fn == "Fn::Sub" and isinstance(arg, str):
            return re.sub(r"\$\{([\w:]+)\}", lambda m: params[m.group(1)], arg)
        if fn == "Fn::FindInMap":
            return t["Mappings"][arg[0]][arg[1]][arg[2]]
        if fn == "Fn::GetAtt" and arg[1] in ("QueueName", "Arn"):
            return resolve(resources_[arg[0]]["Properties"]["QueueName"], t)
    return value


def _of_type(t: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in t["Resources"].items() if v["Type"] == kind}


def test_template_parameter_defaults_are_the_settings_defaults(cfn: dict[str, Any], defaults: Settings) -> None:
    p = cfn["Parameters"]
    assert p["BucketName"]["Default"] == defaults.s3_bucket
    assert p["TableName"]["Default"] == defaults.dynamodb_table_name
    assert p["QueuePrefix"]["Default"] == defaults.sqs_queue_prefix
    assert p["MaxReceiveCount"]["Default"] == defaults.sqs_max_receive_count
    assert p["VisibilityTimeout"]["Default"] == defaults.sqs_visibility_timeout
    for key, field in PREFIX_FIELDS.items():
        assert cfn["Mappings"]["Lake"]["Prefixes"][key] == getattr(defaults, field)


def test_template_creates_exactly_the_queues_and_dlqs_of_resources(cfn: dict[str, Any], defaults: Settings) -> None:
    res = resources(defaults)
    queues = {name: resolve(q["Properties"]["QueueName"], cfn) for name, q in _of_type(cfn, "AWS::SQS::Queue").items()}
    assert set(queues.values()) == {q.name for q in res.queues} | {q.dlq_name for q in res.queues}
    for name, q in _of_type(cfn, "AWS::SQS::Queue").items():
        redrive = q["Properties"].get("RedrivePolicy")
        if redrive:
            assert queues[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]] == queues[name] + DLQ_SUFFIX


def test_template_bucket_table_and_notifications_match_resources(cfn: dict[str, Any], defaults: Settings) -> None:
    res = resources(defaults)
    bucket = cfn["Resources"]["DataBucket"]  # (the other bucket holds access logs)
    (table,) = _of_type(cfn, "AWS::DynamoDB::Table").values()
    assert resolve(bucket["Properties"]["BucketName"], cfn) == res.bucket
    assert resolve(table["Properties"]["TableName"], cfn) == res.table
    in_template = {
        (
            resolve(q["Queue"], cfn),
            tuple((r["Name"], resolve(r["Value"], cfn)) for r in q["Filter"]["S3Key"]["Rules"]),
        )
        for q in bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    }
    bootstrapped = {
        (res.queue("s3-events").name, tuple((r["Name"], r["Value"]) for r in q["Filter"]["Key"]["FilterRules"]))
        for q in notification_configuration(res, "arn")["QueueConfigurations"]
    }
    assert in_template == bootstrapped


def _container_envs(cfn: dict[str, Any]) -> dict[str, dict[str, str]]:
    out = {}
    for task in _of_type(cfn, "AWS::ECS::TaskDefinition").values():
        for c in task["Properties"]["ContainerDefinitions"]:
            out[c["Name"]] = {e["Name"]: str(resolve(e["Value"], cfn)) for e in c["Environment"]}
    return out


def _unknown(env: dict[str, str], settings: type[Settings]) -> set[str]:
    return set(env) - {f.upper() for f in settings.model_fields} - NOT_SETTINGS


def _agrees(env: dict[str, str], expected: Resources, settings: type[Settings]) -> None:
    unknown = _unknown(env, settings)
    assert not unknown, f"not a setting of {settings.__name__} (typo?): {unknown}"
    assert resources(settings.load(env)) == expected


def test_template_containers_are_configured_with_the_same_names(cfn: dict[str, Any], defaults: Settings) -> None:
    envs = _container_envs(cfn)
    assert set(envs) == set(SERVICES)
    for name, env in envs.items():
        _agrees(env, resources(defaults), SETTINGS[name])


def test_compose_services_are_configured_with_the_same_names(defaults: Settings) -> None:
    services = compose()["services"]
    for name in ("bootstrap", *SERVICES):
        env = {k: str(v) for k, v in services[name]["environment"].items() if v is not None}
        _agrees(env, resources(defaults), SETTINGS[name])
    for name, spec in compose(SPARK_STANDALONE)["services"].items():
        env = {k: str(v) for k, v in (spec.get("environment") or {}).items()}
        unknown = _unknown(env, SETTINGS.get(name, Settings))
        assert not unknown, f"{name}: not a setting (typo?): {unknown}"


def test_spark_standalone_override_points_the_runner_at_its_master() -> None:
    services = compose(SPARK_STANDALONE)["services"]
    command = services["spark-master"]["command"]
    host, port = command[command.index("--host") + 1], command[command.index("--port") + 1]
    runner = RunnerSettings.load(services["kpi-spark-runner"]["environment"])
    assert runner.spark_master == f"spark://{host}:{port}"
    assert runner.lake_read_mode == "s3a", "executors on other hosts cannot read the driver's staged copies"
    assert services["spark-worker"]["command"][0] == runner.spark_master


# --- the bootstrap itself, on the embedded emulator: same structure as the template


def _queue_attributes(settings: Settings, name: str) -> dict[str, str]:
    sqs = boto3.client("sqs", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def test_bootstrap_builds_what_the_template_declares(settings: Settings, cfn: dict[str, Any]) -> None:
    """GIVEN the embedded bootstrap ran (the `settings` fixture) WHEN its resources are described
    THEN queues, redrive, table keys and billing are the template's."""
    import json

    res = resources(settings)
    by_name = {
        resolve(q["Properties"]["QueueName"], cfn).removeprefix(cfn["Parameters"]["QueuePrefix"]["Default"]): q[
            "Properties"
        ]
        for q in _of_type(cfn, "AWS::SQS::Queue").values()
    }
    for q in res.queues:
        declared = by_name[q.stage]
        attrs = _queue_attributes(settings, q.name)
        assert int(attrs["MessageRetentionPeriod"]) == declared["MessageRetentionPeriod"]
        assert int(attrs["VisibilityTimeout"]) == settings.sqs_visibility_timeout
        redrive = json.loads(attrs["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == settings.sqs_max_receive_count
        assert redrive["deadLetterTargetArn"].endswith(":" + q.dlq_name)
        dlq = _queue_attributes(settings, q.dlq_name)
        assert int(dlq["MessageRetentionPeriod"]) == by_name[q.stage + DLQ_SUFFIX]["MessageRetentionPeriod"]

    ddb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    described = ddb.describe_table(TableName=res.table)["Table"]
    (table,) = _of_type(cfn, "AWS::DynamoDB::Table").values()
    key = sorted((k["AttributeName"], k["KeyType"]) for k in described["KeySchema"])
    assert key == sorted((k["AttributeName"], k["KeyType"]) for k in table["Properties"]["KeySchema"])
    attrs = sorted((a["AttributeName"], a["AttributeType"]) for a in described["AttributeDefinitions"])
    assert attrs == sorted(
        (a["AttributeName"], a["AttributeType"]) for a in table["Properties"]["AttributeDefinitions"]
    )
    assert described["BillingModeSummary"]["BillingMode"] == table["Properties"]["BillingMode"]


def test_the_compose_bootstrap_command_creates_every_resource(
    emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """`playcount bootstrap` (what the compose bootstrap container runs) is the embedded bootstrap."""
    import uuid

    from playcount.cli.main import main

    suffix = uuid.uuid4().hex[:8]
    env = {
        "AWS_ENDPOINT_URL": emulator,
        "S3_BUCKET": f"compose-{suffix}",
        "DYNAMODB_TABLE_NAME": f"compose-{suffix}",
        "SQS_QUEUE_PREFIX": f"compose-{suffix}-",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["bootstrap"]) == 0
    settings = load_settings(env)
    res = resources(settings)
    s3 = boto3.client("s3", endpoint_url=emulator, region_name=settings.aws_region)
    assert s3.get_bucket_notification_configuration(Bucket=res.bucket)["QueueConfigurations"]
    for q in res.queues:
        assert _queue_attributes(settings, q.name)["RedrivePolicy"]
        _queue_attributes(settings, q.dlq_name)
    ddb = boto3.client("dynamodb", endpoint_url=emulator, region_name=settings.aws_region)
    assert ddb.describe_table(TableName=res.table)["Table"]["TableStatus"] == "ACTIVE"
    teardown(settings)  # what the command created, as the `settings` fixture does for its own
