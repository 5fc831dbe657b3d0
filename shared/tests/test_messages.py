import json

import pytest

from playcount.core.errors import PoisonMessage
from playcount.core.messages import FileValidated, parse_model, parse_s3_event

pytestmark = pytest.mark.fast


def _event(*keys: str, name: str = "ObjectCreated:Put") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": name,
                    "eventTime": "2025-06-24T10:00:00.000Z",
                    "s3": {"bucket": {"name": "b"}, "object": {"key": k, "size": 3, "eTag": '"abc"'}},
                }
                for k in keys
            ]
        }
    )


def test_test_event_is_skipped():
    assert parse_s3_event(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []


def test_keys_are_decoded_moto_and_aws_style():
    refs = parse_s3_event(_event("streams%2Fa.csv", "streams/my+file%2B1+%C3%A9.csv"))
    assert [r.key for r in refs] == ["streams/a.csv", "streams/my file+1 é.csv"]
    assert refs[0].etag == "abc" and refs[0].size == 3


def test_only_created_objects_count():
    assert parse_s3_event(_event("streams/a.csv", name="ObjectRemoved:Delete")) == []


@pytest.mark.parametrize("body", ["not json", "{}", '{"Records": []}', '{"Records": [{"eventName": 1}]}', "[1]"])
def test_bad_bodies_are_poison(body):
    with pytest.raises(PoisonMessage):
        parse_s3_event(body)


def test_inter_service_message_round_trip_and_poison():
    msg = FileValidated(
        kind="streams", file_id="f", source_key="streams/a.csv", dates=["2025-06-24"], report_key="r",
        validated_at="2025-06-24T10:00:00Z",
    )  # fmt: skip
    assert parse_model(FileValidated, msg.model_dump_json()) == msg
    with pytest.raises(PoisonMessage):
        parse_model(FileValidated, '{"kind": "movies"}')
