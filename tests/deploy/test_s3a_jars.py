"""deploy/runner/fetch-s3a-jars.sh, run for real against a local file:// Maven repository.

Maven Central is unreachable here, so the repository is a directory laid out like Maven's;
curl, sha1sum and the script's own checks are the real ones the image build runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.deploy import ROOT, dockerfile

SCRIPT = ROOT / "deploy" / "runner" / "fetch-s3a-jars.sh"
PINS = dockerfile().args()  # the kpi-spark-runner target's s3a-jars stage
HADOOP, SDK, AAL = PINS["HADOOP_VERSION"], PINS["AWS_SDK_V2_VERSION"], PINS["ANALYTICS_ACCELERATOR_VERSION"]

pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sha1sum")), reason="needs curl and sha1sum")


def _artifact(repo: Path, group: str, artifact: str, version: str, body: bytes, sha1: str | None = None) -> None:
    d = repo / group / artifact / version
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{artifact}-{version}.jar").write_bytes(body)
    (d / f"{artifact}-{version}.jar.sha1").write_text(sha1 or hashlib.sha1(body).hexdigest())


def _repo(tmp_path: Path, sdk_declared: str = SDK, bad_sha1: bool = False) -> Path:
    repo = tmp_path / "maven"
    pom = repo / "org/apache/hadoop/hadoop-project" / HADOOP
    pom.mkdir(parents=True)
    (pom / f"hadoop-project-{HADOOP}.pom").write_text(
        "<project><properties>\n"
        f"    <aws-java-sdk-v2.version>{sdk_declared}</aws-java-sdk-v2.version>\n"
        f"    <amazon-s3-analyticsaccelerator-s3.version>{AAL}</amazon-s3-analyticsaccelerator-s3.version>\n"
        "</properties></project>\n"
    )
    _artifact(repo, "org/apache/hadoop", "hadoop-aws", HADOOP, b"hadoop-aws", "0" * 40 if bad_sha1 else None)
    _artifact(repo, "software/amazon/awssdk", "bundle", SDK, b"sdk bundle")
    _artifact(repo, "software/amazon/s3/analyticsaccelerator", "analyticsaccelerator-s3", AAL, b"aal")
    return repo


def _pyspark_jars(tmp_path: Path, hadoop: str = HADOOP) -> Path:
    jars = tmp_path / "pyspark-jars"
    jars.mkdir()
    (jars / f"hadoop-client-api-{hadoop}.jar").write_bytes(b"")
    return jars


def _fetch(repo: Path, jars: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), str(jars), HADOOP, SDK, AAL],
        env={**os.environ, "MAVEN_REPOSITORY": repo.as_uri()},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_fetches_the_three_jars_into_pyspark_s_classpath(tmp_path: Path) -> None:
    jars = _pyspark_jars(tmp_path)
    result = _fetch(_repo(tmp_path), jars)
    assert result.returncode == 0, result.stderr
    assert (jars / f"hadoop-aws-{HADOOP}.jar").read_bytes() == b"hadoop-aws"
    assert (jars / f"bundle-{SDK}.jar").read_bytes() == b"sdk bundle"
    assert (jars / f"analyticsaccelerator-s3-{AAL}.jar").exists()


def test_refuses_an_sdk_other_than_the_one_hadoop_declares(tmp_path: Path) -> None:
    jars = _pyspark_jars(tmp_path)
    result = _fetch(_repo(tmp_path, sdk_declared="2.0.0"), jars)
    assert result.returncode != 0
    assert "aws-java-sdk-v2.version=2.0.0" in result.stderr
    assert not list(jars.glob("bundle-*.jar"))


def test_refuses_a_hadoop_other_than_pyspark_s(tmp_path: Path) -> None:
    jars = _pyspark_jars(tmp_path, hadoop="3.4.1")
    result = _fetch(_repo(tmp_path), jars)
    assert result.returncode != 0
    assert "hadoop-client-api-3.4.1.jar" in result.stderr


def test_refuses_a_jar_whose_checksum_does_not_match(tmp_path: Path) -> None:
    jars = _pyspark_jars(tmp_path)
    result = _fetch(_repo(tmp_path, bad_sha1=True), jars)
    assert result.returncode != 0
    assert not list(jars.glob("hadoop-aws-*.jar"))
