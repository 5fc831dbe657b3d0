"""infra/playcount.yaml: cfn-lint, and the properties production relies on, read from the template.

cfn-lint checks the template against CloudFormation's schemas (Fargate cpu/memory pairs,
references, property types). The tests below check what a schema cannot: least privilege per
task role along the pipeline, scaling on each worker's own queue, alarms on every DLQ, and a
freshness metric filter that matches the log event the writer really emits.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from typing import Any

import pyarrow as pa
import pytest

from playcount.core import lake, parquet, snapshots
from playcount.core.config import Settings, load_settings
from tests.support.deploy import ROOT, SERVICES, TEMPLATE, template, tool

CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
ROLE_OF = {  # ECS service name -> (queue resource it consumes, queue resources it sends to)
    # the validator also sends to its own queue: the reconciliation sweep (core.reconcile)
    "ingest-validator": ("S3EventsQueue", {"ValidatedQueue", "S3EventsQueue"}),
    "kpi-spark-runner": ("ValidatedQueue", {"ResultsQueue"}),
    "dynamo-writer": ("ResultsQueue", set()),
    "query-api": (None, set()),
}


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return template()


def _of_type(t: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in t["Resources"].items() if v["Type"] == kind}


def _ref_name(value: Any) -> str | None:
    """The logical id a Ref or GetAtt points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _statements(role: dict[str, Any], api_key: bool = False) -> list[dict[str, Any]]:
    """The role's statements as deployed with (or without) ApiKeySecretArn: Fn::If resolved."""

    def pick(item: Any) -> Any:
        if isinstance(item, dict) and "Fn::If" in item:
            condition, yes, no = item["Fn::If"]
            assert condition == "HasApiKey", condition
            return yes if api_key else no
        return item

    out = []
    for policy in role["Properties"].get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            st = pick(st)
            if st != {"Ref": "AWS::NoValue"}:
                out.append(st)
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _task_roles(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ECS service name -> its task role resource."""
    out = {}
    for svc in _of_type(t, "AWS::ECS::Service").values():
        task = t["Resources"][_ref_name(svc["Properties"]["TaskDefinition"])]
        out[svc["Properties"]["ServiceName"]] = t["Resources"][_ref_name(task["Properties"]["TaskRoleArn"])]
    return out


def test_cfn_lint_passes() -> None:
    exe = tool("cfn-lint")
    assert exe, "cfn-lint is part of the dev dependencies"
    templates = sorted(str(p) for p in (ROOT / "infra").glob("*.yaml"))
    assert str(TEMPLATE) in templates
    result = subprocess.run([exe, *templates], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_four_fargate_services_each_with_its_own_task_role(cfn: dict[str, Any]) -> None:
    services = _of_type(cfn, "AWS::ECS::Service")
    assert {s["Properties"]["ServiceName"] for s in services.values()} == set(SERVICES)
    assert all(s["Properties"]["LaunchType"] == "FARGATE" for s in services.values())
    roles = [
        _ref_name(cfn["Resources"][_ref_name(s["Properties"]["TaskDefinition"])]["Properties"]["TaskRoleArn"])
        for s in services.values()
    ]
    assert len(set(roles)) == 4


def test_no_task_role_grants_wildcard_actions_or_resources(cfn: dict[str, Any]) -> None:
    for name, role in _task_roles(cfn).items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{name}: managed policies are too broad"
        for st in _statements(role):
            assert st["Effect"] == "Allow"
            for action in _as_list(st["Action"]):
                assert "*" not in action, f"{name}: {action}"
            for resource in _as_list(st["Resource"]):
                assert resource != "*", f"{name}: Resource *"


def test_each_role_consumes_and_sends_only_along_the_pipeline(cfn: dict[str, Any]) -> None:
    for name, role in _task_roles(cfn).items():
        consumes, sends = ROLE_OF[name]
        consumed, sent = set(), set()
        for st in _statements(role):
            actions = set(_as_list(st["Action"]))
            targets = {_ref_name(r) for r in _as_list(st["Resource"])}
            if actions & CONSUME:
                consumed |= targets
            if "sqs:SendMessage" in actions:
                sent |= targets
        assert consumed == ({consumes} if consumes else set()), name
        assert sent == sends, name


@pytest.mark.parametrize("api_key", [False, True], ids=["no-api-key", "api-key"])
def test_only_the_writer_replaces_kpi_items_and_the_api_writes_no_data(cfn: dict[str, Any], api_key: bool) -> None:
    for name, role in _task_roles(cfn).items():
        actions = {a for st in _statements(role, api_key) for a in _as_list(st["Action"])}
        if name != "dynamo-writer":
            assert "dynamodb:DeleteItem" not in actions, name
        if name == "query-api":
            writes = {a for a in actions if re.search(r"^(s3|dynamodb):(Put|Update|Delete|BatchWrite|Abort)", a)}
            assert not writes, f"query-api may write data: {writes}"


def test_api_touches_messages_only_with_an_api_key_and_only_dead_letters_back_to_their_queue(
    cfn: dict[str, Any],
) -> None:
    role = _task_roles(cfn)["query-api"]
    message_actions = CONSUME | {"sqs:SendMessage"}
    assert not {a for st in _statements(role) for a in _as_list(st["Action"])} & message_actions
    queues = {k: v["Properties"] for k, v in _of_type(cfn, "AWS::SQS::Queue").items()}
    dlqs = {k for k, q in queues.items() if "RedrivePolicy" not in q}
    sources = {k for k, q in queues.items() if "RedrivePolicy" in q}
    for st in _statements(role, api_key=True):
        actions = set(_as_list(st["Action"]))
        targets = {_ref_name(r) for r in _as_list(st["Resource"])}
        if actions & CONSUME:
            assert targets == dlqs, st["Sid"]
        if "sqs:SendMessage" in actions:
            assert targets == sources, st["Sid"]


def test_every_worker_scales_on_its_own_queue(cfn: dict[str, Any]) -> None:
    services = {k: v["Properties"]["ServiceName"] for k, v in _of_type(cfn, "AWS::ECS::Service").items()}
    targets = {}
    for logical, target in _of_type(cfn, "AWS::ApplicationAutoScaling::ScalableTarget").items():
        service = re.search(r"\$\{(\w+)\.Name\}", target["Properties"]["ResourceId"]["Fn::Sub"])
        assert service
        targets[logical] = services[service.group(1)]
    policies = {
        k: targets[_ref_name(v["Properties"]["ScalingTargetId"])]
        for k, v in _of_type(cfn, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
    }
    scaled_on: dict[str, set[str]] = {}
    for alarm in _of_type(cfn, "AWS::CloudWatch::Alarm").values():
        p = alarm["Properties"]
        for action in p.get("AlarmActions", []):
            if _ref_name(action) in policies and p.get("MetricName") == "ApproximateNumberOfMessagesVisible":
                queue = _ref_name(p["Dimensions"][0]["Value"])
                scaled_on.setdefault(policies[_ref_name(action)], set()).add(str(queue))
    for service, (consumes, _) in ROLE_OF.items():
        if consumes:
            assert scaled_on.get(service) == {consumes}, service


def test_every_dlq_has_an_alarm_to_the_alarm_topic(cfn: dict[str, Any]) -> None:
    dlqs = {k for k, v in _of_type(cfn, "AWS::SQS::Queue").items() if "RedrivePolicy" not in v["Properties"]}
    alarmed = set()
    for alarm in _of_type(cfn, "AWS::CloudWatch::Alarm").values():
        p = alarm["Properties"]
        if p.get("MetricName") == "ApproximateNumberOfMessagesVisible" and p.get("Dimensions"):
            queue = _ref_name(p["Dimensions"][0]["Value"])
            if queue in dlqs and [_ref_name(a) for a in p["AlarmActions"]] == ["AlarmTopic"]:
                assert p["Threshold"] == 1 and p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
                alarmed.add(queue)
    assert dlqs and alarmed == dlqs


def test_table_is_on_demand_with_point_in_time_recovery_and_bucket_is_encrypted_and_versioned(
    cfn: dict[str, Any],
) -> None:
    (table,) = _of_type(cfn, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    bucket = cfn["Resources"]["DataBucket"]  # (the other bucket holds access logs)
    assert bucket["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert table["DeletionPolicy"] == bucket["DeletionPolicy"] == "Retain"


def test_ledger_state_items_expire_by_the_table_s_ttl(cfn: dict[str, Any]) -> None:
    from playcount.core import ledger

    ttl = cfn["Resources"]["KpiTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": ledger.TTL_ATTRIBUTE, "Enabled": True}


def test_api_sits_behind_the_load_balancer(cfn: dict[str, Any]) -> None:
    (api,) = [s for s in _of_type(cfn, "AWS::ECS::Service").values() if s["Properties"]["ServiceName"] == "query-api"]
    (lb,) = api["Properties"]["LoadBalancers"]
    task = cfn["Resources"][_ref_name(api["Properties"]["TaskDefinition"])]
    env = {e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert lb["ContainerPort"] == int(env["API_PORT"])
    group = cfn["Resources"][_ref_name(lb["TargetGroupArn"])]["Properties"]
    assert group["Port"] == lb["ContainerPort"] and group["HealthCheckPath"] == "/health"


def test_container_health_checks_run_the_image_health_module(cfn: dict[str, Any]) -> None:
    for task in _of_type(cfn, "AWS::ECS::TaskDefinition").values():
        for c in task["Properties"]["ContainerDefinitions"]:
            assert c["HealthCheck"]["Command"][:4] == ["CMD", "python", "-m", "playcount.core.health"], c["Name"]
            assert c["LogConfiguration"]["LogDriver"] == "awslogs"


def _filter_matches(pattern: str, event: dict[str, Any]) -> bool:
    """CloudWatch Logs JSON filter patterns of the form `{ $.a = "x" && $.b = "y" }`."""
    terms = re.findall(r'\$\.(\w+)\s*=\s*"([^"]*)"', pattern)
    assert terms, f"unsupported filter pattern {pattern!r}"
    return all(str(event.get(field)) == value for field, value in terms)


def test_freshness_metric_filter_matches_the_event_the_writer_logs(cfn: dict[str, Any], settings: Settings) -> None:
    """GIVEN a process logging as the writer's container does (LOG_FORMAT=json) WHEN it records a
    freshness lag (real call, real table) THEN the metric filter picks the line and its value."""
    (mf,) = _of_type(cfn, "AWS::Logs::MetricFilter").values()
    assert _ref_name(mf["Properties"]["LogGroupName"]) == "WriterLogGroup"
    (transform,) = mf["Properties"]["MetricTransformations"]
    script = (
        "import boto3, os\n"
        "from playcount.core import ledger, logs\n"
        "logs.configure('INFO', 'json', service='dynamo-writer')\n"
        "ddb = boto3.client('dynamodb', endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name='us-east-1')\n"
        "ledger.record_freshness(ddb, os.environ['DYNAMODB_TABLE_NAME'], 12.3456, 'file-1')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    (event,) = [e for e in lines if _filter_matches(mf["Properties"]["FilterPattern"], e)]
    assert event[transform["MetricValue"].removeprefix("$.")] == pytest.approx(12.346)
    alarms = [
        a["Properties"]
        for a in _of_type(cfn, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == transform["MetricName"]
    ]
    assert alarms and alarms[0]["Threshold"] == {"Ref": "FreshnessLagAlarmSeconds"}


def _when(value: Any, condition: str, holds: bool) -> Any:
    """`value` as deployed when `condition` holds (or not): one level of Fn::If resolved."""
    if isinstance(value, dict) and "Fn::If" in value:
        name, yes, no = value["Fn::If"]
        assert name == condition, name
        return yes if holds else no
    return value


@pytest.mark.parametrize("cmk", [False, True], ids=["aws-keys", "customer-key"])
def test_every_queue_table_bucket_and_log_group_is_encrypted(cfn: dict[str, Any], cmk: bool) -> None:
    key = {"Ref": "KmsKeyArn"}
    no_value = {"Ref": "AWS::NoValue"}
    queues = _of_type(cfn, "AWS::SQS::Queue")
    assert len(queues) == 6
    for name, q in queues.items():
        props = q["Properties"]
        kms, managed = (_when(props.get(k), "HasKmsKey", cmk) for k in ("KmsMasterKeyId", "SqsManagedSseEnabled"))
        # SSE-SQS without a customer key: S3 cannot send to a queue under the AWS-managed alias/aws/sqs
        assert (kms, managed) == ((key, no_value) if cmk else (no_value, True)), name
    sse = _when(cfn["Resources"]["KpiTable"]["Properties"]["SSESpecification"], "HasKmsKey", cmk)
    assert sse["SSEEnabled"] is True and (sse.get("KMSMasterKeyId") == key) == cmk
    bucket = cfn["Resources"]["DataBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    default = _when(bucket["ServerSideEncryptionByDefault"], "HasKmsKey", cmk)
    assert default == ({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} if cmk else {"SSEAlgorithm": "AES256"})
    for name, group in _of_type(cfn, "AWS::Logs::LogGroup").items():
        assert _when(group["Properties"]["KmsKeyId"], "HasKmsKey", cmk) == (key if cmk else no_value), name
    use = cfn["Resources"]["KmsKeyUsePolicy"]
    assert use["Condition"] == "HasKmsKey"
    assert {_ref_name(r) for r in use["Properties"]["Roles"]} == {
        _ref_name(r["Properties"]["TaskRoleArn"])
        for r in (
            cfn["Resources"][_ref_name(s["Properties"]["TaskDefinition"])]
            for s in _of_type(cfn, "AWS::ECS::Service").values()
        )
    }
    assert all(st["Resource"] == key for st in use["Properties"]["PolicyDocument"]["Statement"])


def test_the_api_is_https_and_plain_http_is_an_explicit_choice(cfn: dict[str, Any]) -> None:
    listeners = _of_type(cfn, "AWS::ElasticLoadBalancingV2::Listener")
    https = listeners["HttpsListener"]
    assert https["Condition"] == "HasCertificate"
    assert https["Properties"]["Protocol"] == "HTTPS" and https["Properties"]["SslPolicy"].startswith(
        "ELBSecurityPolicy-TLS13-1-2"
    )
    assert https["Properties"]["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    redirect = listeners["HttpRedirectListener"]
    assert redirect["Condition"] == "HasCertificate"
    assert [a["Type"] for a in redirect["Properties"]["DefaultActions"]] == ["redirect"]
    assert redirect["Properties"]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    plain = listeners["PlainHttpListener"]
    assert plain["Condition"] == "NoCertificate" and set(listeners) == {
        "HttpsListener",
        "HttpRedirectListener",
        plain and "PlainHttpListener",
    }
    # without a certificate the stack refuses to deploy unless AllowPlainHttp=true
    rule = cfn["Rules"]["HttpsOrExplicitHttp"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "AllowPlainHttp"}, "true"]}
    assert cfn["Parameters"]["AllowPlainHttp"]["Default"] == "false"
    # who may reach the load balancer is a parameter (open by default, as docs/deploy.md says)
    ingress = cfn["Resources"]["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert all(rule["CidrIp"] == {"Ref": "ApiIngressCidr"} for rule in ingress)


def test_the_bucket_and_the_load_balancer_log_access_to_a_separate_expiring_bucket(cfn: dict[str, Any]) -> None:
    logs = cfn["Resources"]["AccessLogBucket"]["Properties"]
    assert cfn["Resources"]["DataBucket"]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": "AccessLogBucket"
    }
    attributes = {
        a["Key"]: a["Value"] for a in cfn["Resources"]["LoadBalancer"]["Properties"]["LoadBalancerAttributes"]
    }
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"] == {"Ref": "AccessLogBucket"}
    rules = logs["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and r.get("ExpirationInDays") for r in rules)
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }, "load balancer log delivery writes only to SSE-S3 buckets"
    assert all(logs["PublicAccessBlockConfiguration"].values())
    assert "AccessLogBucketPolicy" in _as_list(cfn["Resources"]["LoadBalancer"]["DependsOn"])


def test_result_objects_are_bounded_by_the_writer_and_a_lifecycle_rule(cfn: dict[str, Any]) -> None:
    transformed = {"Fn::FindInMap": ["Lake", "Prefixes", "Transformed"]}
    rules = cfn["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (results,) = [r for r in rules if r.get("Prefix") == transformed]
    # longer than SQS keeps a message (14 days): no result is expired before its message is handled
    assert results["Status"] == "Enabled" and results["ExpirationInDays"] > 14
    writer = _task_roles(cfn)["dynamo-writer"]
    deletes = [st for st in _statements(writer) if "s3:DeleteObject" in _as_list(st["Action"])]
    assert deletes and all("Transformed" in json.dumps(st["Resource"]) for st in deletes)
    lists = [st for st in _statements(writer) if "s3:ListBucket" in _as_list(st["Action"])]
    assert lists and "Transformed" in json.dumps(lists[0]["Condition"])


def _lake_location(value: Any, t: dict[str, Any]) -> str:
    """An `!Sub [text, {P: !FindInMap [...]}]` location as deployed with the default bucket name."""
    text, variables = value["Fn::Sub"]
    found = {
        k: t["Mappings"][v["Fn::FindInMap"][0]][v["Fn::FindInMap"][1]][v["Fn::FindInMap"][2]]
        for k, v in variables.items()
    }
    found["DataBucket"] = t["Parameters"]["BucketName"]["Default"]
    return re.sub(r"\$\{(\w+)\}", lambda m: found[m.group(1)], text).replace("${!", "${")


def test_athena_reads_the_events_where_the_validator_writes_them_within_a_scan_cutoff(cfn: dict[str, Any]) -> None:
    """The events table is the lake's layout (core.lake): its location, columns and projected date
    partitions. No table's location holds an object that is not Parquet (Athena reads every object
    there: a catalog manifest or the id index would fail every query). The workgroup enforces its
    settings and cancels a query past the scan cutoff."""
    defaults = load_settings({})
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"] for t in _of_type(cfn, "AWS::Glue::Table").values()
    }
    (database,) = _of_type(cfn, "AWS::Glue::Database")
    assert "events" in tables and all(_ref_name(t["DatabaseName"]) == database for t in tables.values())
    events = tables["events"]["TableInput"]
    bucket = f"s3://{defaults.s3_bucket}/"
    assert _lake_location(events["StorageDescriptor"]["Location"], cfn) == bucket + lake.streams_root(defaults)
    athena_type = {pa.string(): "string", pa.timestamp("us", tz="UTC"): "timestamp"}
    columns = [(c["Name"], c["Type"]) for c in events["StorageDescriptor"]["Columns"]]
    assert columns == [(f.name, athena_type[f.type]) for f in parquet.EVENTS]
    assert [(k["Name"], k["Type"]) for k in events["PartitionKeys"]] == [("listen_date", "string")]
    assert events["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    # one projected partition per day, where the validator writes it (yyyy-MM-dd is isoformat)
    p = events["Parameters"]
    assert (p["projection.enabled"], p["projection.listen_date.type"]) == ("true", "date")
    assert (p["projection.listen_date.format"], p["projection.listen_date.interval.unit"]) == ("yyyy-MM-dd", "DAYS")
    assert p["projection.listen_date.range"] == {"Fn::Sub": "${AthenaFirstListenDate},NOW"}
    day = dt.date(2025, 6, 24)
    template = _lake_location(p["storage.location.template"], cfn)
    assert template.replace("${listen_date}", day.isoformat()) == bucket + lake.date_partition(defaults, day)
    # what else the pipeline writes to the validated prefix lies outside every table's location
    locations = [
        _lake_location(t["TableInput"]["StorageDescriptor"]["Location"], cfn)
        for t in tables.values()
        if t["TableInput"]["TableType"] == "EXTERNAL_TABLE"
    ]
    others = [
        lake.id_index_key(defaults, "user_id", day, "f"),
        *(snapshots.manifest_key(defaults, k) for k in snapshots.KINDS),
        *(snapshots.legacy_key(defaults, k) for k in snapshots.KINDS),
    ]
    assert not [(key, loc) for key in others for loc in locations if (bucket + key).startswith(loc)]
    group = cfn["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert group["EnforceWorkGroupConfiguration"] is True
    assert group["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    cutoff = cfn["Parameters"]["AthenaBytesScannedCutoff"]
    assert cutoff["MinValue"] == 10_000_000 <= cutoff["Default"] <= 100 * 2**30  # Athena's minimum; a bounded default
    assert group["ResultConfiguration"]["OutputLocation"] == {"Fn::Sub": "s3://${AthenaResultsBucket}/results/"}


@pytest.mark.parametrize("cmk", [False, True], ids=["aws-keys", "customer-key"])
def test_athena_results_are_encrypted_private_tls_only_logged_and_expire(cfn: dict[str, Any], cmk: bool) -> None:
    key = {"Ref": "KmsKeyArn"}
    results = cfn["Resources"]["AthenaResultsBucket"]
    props = results["Properties"]
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert _when(sse, "HasKmsKey", cmk) == (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} if cmk else {"SSEAlgorithm": "AES256"}
    )
    written = cfn["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]
    assert _when(written["EncryptionConfiguration"], "HasKmsKey", cmk) == (
        {"EncryptionOption": "SSE_KMS", "KmsKey": key} if cmk else {"EncryptionOption": "SSE_S3"}
    )
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["VersioningConfiguration"]["Status"] == "Enabled" and results["DeletionPolicy"] == "Retain"
    (expiry,) = props["LifecycleConfiguration"]["Rules"]
    assert expiry["Status"] == "Enabled" and expiry["ExpirationInDays"] == {"Ref": "AthenaResultsRetentionDays"}
    policies = [p["Properties"] for p in _of_type(cfn, "AWS::S3::BucketPolicy").values()]
    (policy,) = [p for p in policies if _ref_name(p["Bucket"]) == "AthenaResultsBucket"]
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # its access logs go to the access-log bucket, which lets S3 deliver them for this bucket only
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    prefix = props["LoggingConfiguration"]["LogFilePrefix"]
    logs = cfn["Resources"]["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    source = {"Fn::GetAtt": ["AthenaResultsBucket", "Arn"]}
    (delivery,) = [s for s in logs if s.get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn") == source]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Resource"] == {"Fn::Sub": "${AccessLogBucket.Arn}/" + prefix + "*"}


_HIVE = {pa.string(): "string", pa.int64(): "bigint"}
_PRESTO = {pa.string(): "varchar", pa.int64(): "bigint"}


@pytest.mark.parametrize(
    ("kind", "segments", "view"), [("songs", "song_segments", "SongsView"), ("users", "user_segments", "UsersView")]
)
def test_athena_reads_the_catalogs_segments_and_a_view_keeps_the_newest_row_per_id(
    cfn: dict[str, Any], kind: snapshots.Kind, segments: str, view: str
) -> None:
    defaults = load_settings({})
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in _of_type(cfn, "AWS::Glue::Table").values()
    }
    # the segments table: the kind's folder, every column of a segment (core.snapshots), _seq included
    raw = tables[segments]["StorageDescriptor"]
    assert _lake_location(raw["Location"], cfn) == f"s3://{defaults.s3_bucket}/{snapshots.prefix(defaults, kind)}"
    schema = snapshots.segment_schema(kind)
    assert [(c["Name"], c["Type"]) for c in raw["Columns"]] == [(f.name, _HIVE[f.type]) for f in schema]
    assert not snapshots.manifest_key(defaults, kind).startswith(snapshots.prefix(defaults, kind))
    # the view: a Presto view over it, newest _seq per id, with the snapshot's columns
    table = tables[kind]
    assert table["TableType"] == "VIRTUAL_VIEW" and table["Parameters"]["presto_view"] == "true"
    head, encoded, tail = table["ViewOriginalText"]["Fn::Join"][1]
    assert (head, tail) == ("/* Presto View: ", " */")
    definition = json.loads(encoded["Fn::Base64"]["Fn::Sub"].replace("${AthenaDatabaseName}", "playcount"))
    assert (definition["catalog"], definition["schema"]) == ("awsdatacatalog", "playcount")
    snapshot = snapshots.SCHEMA[kind]
    assert definition["columns"] == [{"name": f.name, "type": _PRESTO[f.type]} for f in snapshot]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        (f.name, _HIVE[f.type]) for f in snapshot
    ]
    sql = definition["originalSql"]
    id_column = snapshots.ID_COLUMN[kind]
    assert f'PARTITION BY {id_column} ORDER BY "_seq" DESC' in sql and f'"playcount"."{segments}"' in sql
    assert sql.endswith("WHERE newest = 1")
