import pytest
from pydantic import ValidationError

from playcount.core.config import load_settings


def test_defaults_match_the_seed():
    s = load_settings({})
    assert s.s3_bucket == "music-streaming-data"
    assert s.dynamodb_table_name == "music-streaming-kpis"
    assert (s.s3_raw_data_prefix, s.songs_prefix, s.users_prefix) == ("streams/", "metadata/songs/", "metadata/users/")


def test_environment_overrides_and_round_trips():
    s = load_settings({"S3_BUCKET": "other", "API_PORT": "9000", "UNRELATED": "x"})
    assert (s.s3_bucket, s.api_port) == ("other", 9000)
    assert load_settings(s.to_env()) == s


@pytest.mark.parametrize(
    "env",
    [
        {"S3_ARCHIVE_PREFIX": "streams/archive/"},  # output inside an input prefix: endless loop
        {"S3_RAW_DATA_PREFIX": "streams"},
        {"API_KEY": "short"},
        {"SQS_MAX_RECEIVE_COUNT": "0"},
    ],
)
def test_unsafe_settings_are_refused(env):
    with pytest.raises(ValidationError):
        load_settings(env)
