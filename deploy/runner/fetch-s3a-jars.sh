#!/usr/bin/env bash
# Add the s3a connector to pyspark's own jars directory, at image build time (the runner
# Dockerfile's builder stage; Maven Central must be reachable from the build).
#
#   fetch-s3a-jars.sh <pyspark jars dir> <hadoop version> <aws sdk v2 version> <analytics accelerator version>
#
# The build fails rather than ship a connector that does not match: the Hadoop version must be
# the hadoop-client-api jar pyspark bundles, and the SDK bundle and analytics accelerator
# versions must be the ones that Hadoop release's hadoop-project POM declares. Every jar is
# checked against Maven Central's published SHA-1.
set -euo pipefail
jars=$1 hadoop=$2 sdk=$3 aal=$4
maven=${MAVEN_REPOSITORY:-https://repo1.maven.org/maven2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

get() { curl -fsSL --retry 5 --retry-all-errors "$1" -o "$2"; }

if [ ! -f "$jars/hadoop-client-api-$hadoop.jar" ]; then
  echo "pyspark bundles $(cd "$jars" && ls hadoop-client-api-*.jar), not Hadoop $hadoop: update HADOOP_VERSION" >&2
  exit 1
fi

get "$maven/org/apache/hadoop/hadoop-project/$hadoop/hadoop-project-$hadoop.pom" "$work/hadoop-project.pom"
pom_property() { sed -n "s|.*<$1>\([^<]*\)</$1>.*|\1|p" "$work/hadoop-project.pom" | head -1; }
expect() {  # property, pinned value
  local declared
  declared=$(pom_property "$1")
  if [ "$declared" != "$2" ]; then
    echo "hadoop-project $hadoop declares $1=$declared but the Dockerfile pins $2" >&2
    exit 1
  fi
}
expect aws-java-sdk-v2.version "$sdk"
expect amazon-s3-analyticsaccelerator-s3.version "$aal"

fetch() {  # group path, artifact, version
  local jar="$2-$3.jar" url="$maven/$1/$2/$3/$2-$3.jar"
  get "$url" "$work/$jar"
  get "$url.sha1" "$work/$jar.sha1"
  echo "$(cut -c1-40 "$work/$jar.sha1")  $work/$jar" | sha1sum --check --strict -
  mv "$work/$jar" "$jars/$jar"
}

fetch org/apache/hadoop hadoop-aws "$hadoop"
fetch software/amazon/awssdk bundle "$sdk"
fetch software/amazon/s3/analyticsaccelerator analyticsaccelerator-s3 "$aal"
