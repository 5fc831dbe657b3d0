# syntax=docker/dockerfile:1
# Every Playcount image, from one file: a shared uv builder, a shared runtime, one target per image.
# Build from the repository root, naming the image's target and its SERVICE:
#   docker build --target ingest-validator --build-arg SERVICE=ingest-validator -t playcount/ingest-validator:0.1.0 .
#   docker build --target kpi-spark-runner --build-arg SERVICE=kpi-spark-runner -t playcount/kpi-spark-runner:0.1.0 .
#   docker build --target dynamo-writer --build-arg SERVICE=dynamo-writer -t playcount/dynamo-writer:0.1.0 .
#   docker build --target query-api --build-arg SERVICE=query-api -t playcount/query-api:0.1.0 .
#   docker build --target cli --build-arg SERVICE=cli -t playcount/cli:0.1.0 .
# SERVICE picks the workspace package the builder installs (PACKAGE, playcount-$SERVICE unless
# given); the target picks the entry point, environment, port and health check, so the two must
# name the same image (docker-compose.yml passes both; tests/deploy/test_compose.py checks it).
# The kpi-spark-runner target also downloads the s3a jars from Maven Central (LAKE_READ_MODE=s3a
# and remote clusters need them); set --build-arg MAVEN_REPOSITORY=... to use a mirror.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
ARG SERVICE
ARG PACKAGE=playcount-${SERVICE}

# checkov:skip=CKV_DOCKER_7: the base images are pinned by the ARG defaults above (tests/deploy/test_dockerfiles.py checks them); checkov does not expand ARGs
FROM ${UV_IMAGE} AS uv

# --- deps: the locked third-party dependencies of one package, into /app/.venv
FROM ${PYTHON_IMAGE} AS deps
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# with --frozen, uv installs what the lock says without resolving or building anything: the lock
# and the workspace root are all it reads here, so this layer is rebuilt only when they change
COPY uv.lock pyproject.toml ./
ARG PACKAGE
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "${PACKAGE}"

# --- builder: the workspace's libraries and services, then PACKAGE and the members it needs,
# non-editable (the runtime copies the venv alone). devstack, the developer's embedded stack,
# is never copied: no image installs it.
FROM deps AS builder
COPY shared shared
COPY ops ops
COPY cli cli
COPY services services
ARG PACKAGE
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "${PACKAGE}"

# --- s3a-jars (kpi-spark-runner only): hadoop-aws must equal the Hadoop client pyspark 4.3.0
# bundles (hadoop-client-api-3.5.0.jar), and the AWS SDK v2 bundle must be the one that Hadoop
# release is built against; the script checks both against Maven Central, and every jar's SHA-1.
# Built on the dependency layer, so a code change does not download them again.
FROM deps AS s3a-jars
# Debian's archive drops superseded versions, so pinned apt versions would break rebuilds;
# the base image tag pins the release instead
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
ARG HADOOP_VERSION=3.5.0
ARG AWS_SDK_V2_VERSION=2.35.4
ARG ANALYTICS_ACCELERATOR_VERSION=1.3.1
ARG MAVEN_REPOSITORY=https://repo1.maven.org/maven2
COPY deploy/runner/fetch-s3a-jars.sh /usr/local/bin/fetch-s3a-jars.sh
# fetched into pyspark's own jars directory (where the script checks pyspark's Hadoop), then
# moved to /s3a, so the runner copies these three jars and not pyspark's again
RUN jars=/app/.venv/lib/python3.11/site-packages/pyspark/jars \
    && MAVEN_REPOSITORY=${MAVEN_REPOSITORY} fetch-s3a-jars.sh "$jars" \
        "${HADOOP_VERSION}" "${AWS_SDK_V2_VERSION}" "${ANALYTICS_ACCELERATOR_VERSION}" \
    && mkdir /s3a \
    && mv "$jars/hadoop-aws-${HADOOP_VERSION}.jar" "$jars/bundle-${AWS_SDK_V2_VERSION}.jar" \
        "$jars/analyticsaccelerator-s3-${ANALYTICS_ACCELERATOR_VERSION}.jar" /s3a/

# --- base: what every image starts from: the Python image and an unprivileged user
FROM ${PYTHON_IMAGE} AS base
RUN groupadd --system --gid 10001 playcount \
    && useradd --system --uid 10001 --gid playcount --no-create-home --shell /usr/sbin/nologin playcount
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LOG_FORMAT=json
WORKDIR /app

# --- runtime: the virtual environment only, run by the unprivileged user
FROM base AS runtime
COPY --from=builder /app/.venv /app/.venv
USER 10001:10001

# --- the queue workers: metrics on 9100, and the heartbeat file the health check reads
FROM runtime AS worker
ENV METRICS_PORT=9100 HEALTH_FILE=/tmp/playcount.health WORK_DIR=/tmp/playcount
EXPOSE 9100
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "playcount.core.health", "--max-age", "120"]

# ingest-validator: judges every uploaded CSV
FROM worker AS ingest-validator
ENTRYPOINT ["playcount-validator"]

# dynamo-writer: applies each day's KPIs to DynamoDB
FROM worker AS dynamo-writer
ENTRYPOINT ["playcount-writer"]

# --- kpi-spark-runner: the Spark driver that recomputes each touched day. Java 17 first (it
# changes least), then the venv and the s3a jars; an unprivileged user as in every image
FROM base AS kpi-spark-runner
# bookworm's slim image lacks the man directory openjdk's post-install links into
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /app/.venv /app/.venv
COPY --from=s3a-jars /s3a/ /app/.venv/lib/python3.11/site-packages/pyspark/jars/
# SPARK_HOME is pyspark's own directory, so the s3a jars above are on every Spark classpath,
# including executors started from this image (standalone workers)
ENV SPARK_HOME=/app/.venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/app/.venv/bin/python PYSPARK_DRIVER_PYTHON=/app/.venv/bin/python \
    METRICS_PORT=9100 HEALTH_FILE=/tmp/playcount.health WORK_DIR=/tmp/playcount \
    SPARK_DRIVER_MEMORY=2g
USER 10001:10001
EXPOSE 9100
# the heartbeat is written on each poll; a long Spark batch legitimately pauses polling, hence
# the longer limit, and the start period covers the JVM warm-up before the first poll
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "playcount.core.health", "--max-age", "600"]
ENTRYPOINT ["playcount-runner"]

# --- query-api: the HTTP API (KPIs, pipeline status, /metrics, dashboard)
FROM runtime AS query-api
ENV API_HOST=0.0.0.0 API_PORT=8000 WORK_DIR=/tmp/playcount
# /metrics is served on the API port itself
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "playcount.core.health", "--url", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["playcount-api"]

# --- cli: the `playcount` operator command for one-shot jobs; docker-compose runs
# `playcount bootstrap` with it (playcount.ops.bootstrap, as the embedded stack does)
FROM runtime AS cli
# a one-shot job: it exits when done, so "running" is never a state worth probing
HEALTHCHECK NONE
ENTRYPOINT ["playcount"]
CMD ["bootstrap"]
