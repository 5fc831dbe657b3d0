"""One warm SparkSession per runner process, tuned for the data size rather than Spark's defaults.

`LAKE_READ_MODE=stage` (default) mirrors the needed date partitions to local disk with boto3
(no hadoop-aws jars needed). `LAKE_READ_MODE=s3a` reads the lake in place through `s3a://`.
That needs hadoop-aws of exactly the Hadoop version pyspark bundles, plus the AWS SDK v2
bundle that Hadoop release declares. The runner's image adds both to pyspark's `jars/`
(deploy/runner/fetch-s3a-jars.sh). Without them, `SPARK_S3A_PACKAGES` (or by default
`org.apache.hadoop:hadoop-aws:<bundled version>`, whose POM pulls the matching SDK bundle)
is resolved from Maven at start-up.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pyspark
from pyspark.sql import SparkSession

from playcount.runner.config import RunnerSettings

JARS = Path(pyspark.__file__).parent / "jars"


def bundled_hadoop_version(jars: Path = JARS) -> str:
    """The Hadoop version pyspark ships (from `hadoop-client-api-<version>.jar`)."""
    for jar in sorted(jars.glob("hadoop-client-api-*.jar")):
        match = re.fullmatch(r"hadoop-client-api-(.+)\.jar", jar.name)
        if match:
            return match.group(1)
    raise FileNotFoundError(f"no hadoop-client-api jar in {jars}")


def s3a_packages(jars: Path = JARS) -> str | None:
    """Maven coordinates to add for s3a, or None when hadoop-aws is already on the classpath."""
    explicit = os.environ.get("SPARK_S3A_PACKAGES")
    if explicit:
        return explicit
    if any(jars.glob("hadoop-aws-*.jar")):
        return None
    return f"org.apache.hadoop:hadoop-aws:{bundled_hadoop_version(jars)}"


def spark_session(settings: RunnerSettings, app_name: str = "playcount-kpi-runner") -> SparkSession:
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        # no fixed spark.sql.shuffle.partitions: each batch sizes it from its input (compute.shuffle_partitions)
        # off: adaptive execution splits the batch's single plan into one job per stage (measurably
        # slower for small batches), and its partition coalescing is replaced by sizing per batch
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.files.maxPartitionBytes", str(64 << 20))
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=WARN")
        # one batch's plan has ~100 generated classes, more than the default cache (100) holds:
        # every batch would recompile most of them
        .config("spark.sql.codegen.cache.maxEntries", "2000")
        # off: pyspark records the Python call site of every DataFrame call for error messages,
        # three more JVM round trips per call (a third of a small batch's plan-building time)
        .config("spark.python.sql.dataFrameDebugging.enabled", "false")
    )
    if settings.lake_read_mode == "s3a":
        builder = _s3a(builder, settings)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _s3a(builder: SparkSession.Builder, settings: RunnerSettings) -> SparkSession.Builder:
    builder = builder.config("spark.hadoop.fs.s3a.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem").config(
        "spark.hadoop.fs.s3a.aws.credentials.provider",
        "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
    )
    if settings.aws_endpoint_url:
        url = urlparse(settings.aws_endpoint_url)
        builder = (
            builder.config("spark.hadoop.fs.s3a.endpoint", settings.aws_endpoint_url)
            .config("spark.hadoop.fs.s3a.path.style.access", "true")
            .config("spark.hadoop.fs.s3a.connection.ssl.enabled", str(url.scheme == "https").lower())
            .config("spark.hadoop.fs.s3a.endpoint.region", settings.aws_region)
        )
    packages = s3a_packages()
    if packages:
        builder = builder.config("spark.jars.packages", packages)
    return builder
