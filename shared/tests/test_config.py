import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from playcount.api.config import ApiSettings
from playcount.core.config import Settings, load_settings
from playcount.runner.config import RunnerSettings
from playcount.validator.config import ValidatorSettings
from playcount.writer.config import WriterSettings

pytestmark = pytest.mark.fast

SERVICE_SETTINGS = (ValidatorSettings, RunnerSettings, WriterSettings, ApiSettings)
SHARED_SRC = Path(__file__).resolve().parents[1] / "src"


def test_defaults_match_the_seed():
    s = load_settings({})
    assert s.s3_bucket == "music-streaming-data"
    assert s.dynamodb_table_name == "music-streaming-kpis"
    assert (s.s3_raw_data_prefix, s.songs_prefix, s.users_prefix) == ("streams/", "metadata/songs/", "metadata/users/")


def test_environment_overrides_and_round_trips():
    s = ApiSettings.load({"S3_BUCKET": "other", "API_PORT": "9000", "UNRELATED": "x"})
    assert (s.s3_bucket, s.api_port) == ("other", 9000)
    assert ApiSettings.load(s.to_env()) == s


@pytest.mark.parametrize(
    ("cls", "env"),
    [
        (Settings, {"S3_ARCHIVE_PREFIX": "streams/archive/"}),  # output inside an input prefix: endless loop
        (Settings, {"S3_RAW_DATA_PREFIX": "streams"}),
        (ApiSettings, {"API_KEY": "short"}),
        (Settings, {"SQS_MAX_RECEIVE_COUNT": "0"}),
        (RunnerSettings, {"LAKE_READ_MODE": "hdfs"}),
        (ValidatorSettings, {"RECONCILE_SECONDS": "-1"}),
    ],
)
def test_unsafe_settings_are_refused(cls, env):
    with pytest.raises(ValidationError):
        cls.load(env)


def test_each_service_owns_its_knobs_and_shares_the_base():
    shared = set(Settings.model_fields)
    own = {cls: set(cls.model_fields) - shared for cls in SERVICE_SETTINGS}
    assert all(own.values()), own  # every service adds something
    for cls, names in own.items():
        for other, theirs in own.items():
            assert other is cls or not names & theirs, (cls, other)  # no knob in two services
    # a service ignores another's variables instead of refusing them (one environment for all)
    assert WriterSettings.load({"API_PORT": "9000", "SPARK_MASTER": "x"}).writer_apply_newest is True


def test_the_shared_package_names_no_service_knob():
    found = subprocess.run(
        ["grep", "-rE", "spark_|runner_|writer_|api_", str(SHARED_SRC)], capture_output=True, text=True, check=False
    )
    assert found.returncode == 1, found.stdout  # grep: 1 = nothing found


def test_the_writer_and_the_api_import_no_pyarrow_or_numpy():
    # they name objects and judge genres in plain Python (core.lake, core.keys); the API's
    # quarantine replay imports pyarrow only when an operator asks for one (ops.rejudge)
    code = (
        "import sys, playcount.writer.main, playcount.api.main, playcount.api.app;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'numpy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
