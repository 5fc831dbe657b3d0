"""One warm SparkSession per runner process, tuned for the data size rather than Spark's defaults.

`LAKE_READ_MODE=stage` (default) copies the needed date partitions to local disk with pyarrow
(no hadoop-aws jars needed). `LAKE_READ_MODE=s3a` reads the lake in place through `s3a://`;
it needs hadoop-aws and the matching AWS SDK bundle on the classpath (the runner's image adds
them; see the README's Deploy section).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from playcount.core.config import Settings


def spark_session(settings: Settings, app_name: str = "playcount-kpi-runner") -> SparkSession:
    builder = (
        SparkSession.builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.default.parallelism", str(settings.spark_shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.adaptive.coalescePartitions.enabled", "true")
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.files.maxPartitionBytes", str(64 << 20))
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=WARN")
    )
    if settings.lake_read_mode == "s3a":
        builder = _s3a(builder, settings)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _s3a(builder: SparkSession.Builder, settings: Settings) -> SparkSession.Builder:
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
    packages = os.environ.get("SPARK_S3A_PACKAGES")
    if packages:
        builder = builder.config("spark.jars.packages", packages)
    return builder
