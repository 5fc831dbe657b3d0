"""docker-compose.yml, its Spark override, and the monitoring it provisions, checked offline.

Debian's docker-compose 1.29.2 validates a compose file without an engine; promtool (Debian's
`prometheus` package) checks the Prometheus config and every dashboard query when installed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy import (
    COMPOSE,
    DASHBOARDS,
    DATASOURCES,
    PROMETHEUS,
    ROOT,
    SERVICES,
    SPARK_STANDALONE,
    TARGETS,
    compose,
    dockerfile,
    tool,
)

GATED = {"service_healthy", "service_completed_successfully", "service_started"}


def _compose_config(*files: Path) -> dict[str, Any]:
    exe = tool("docker-compose")
    if not exe:
        pytest.skip("docker-compose is not installed (scripts/setup.sh test installs Debian's)")
    args = [exe]
    for f in files:
        args += ["-f", str(f)]
    result = subprocess.run(
        [*args, "config"], cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, SPARK_STANDALONE)], ids=["compose", "spark-standalone"])
def test_docker_compose_validates_the_file(files: tuple[Path, ...]) -> None:
    config = _compose_config(*files)
    assert {"localstack", "bootstrap", *SERVICES, "prometheus", "grafana"} <= set(config["services"])


# compose service -> the Dockerfile target it is built from
BUILT_FROM = {
    **{name: name for name in SERVICES},
    "bootstrap": "cli",
    # the Spark override's master and worker run from the runner's image
    "spark-master": "kpi-spark-runner",
    "spark-worker": "kpi-spark-runner",
}


def test_every_image_is_built_from_the_one_dockerfile_with_its_target_and_service() -> None:
    """The target picks the entry point, port and health check, SERVICE the package the builder
    installs: a pair that does not name the same image would build one service's venv under
    another's entry point."""
    stages = {dockerfile().name_of(s) for s in dockerfile().stages()}
    services = _all_services()
    built = {name: spec["build"] for name, spec in services.items() if "build" in spec}
    assert set(built) == set(BUILT_FROM)
    for name, build in built.items():
        target = BUILT_FROM[name]
        assert target in stages, f"{name}: no target {target} in the Dockerfile"
        assert build == {
            "context": ".",
            "dockerfile": "Dockerfile",
            "target": target,
            "args": {"SERVICE": TARGETS[target].service},
        }, name
        assert services[name]["image"].rpartition(":")[0] == f"playcount/{target}", name
    assert services["bootstrap"]["command"] == ["bootstrap"], "the compose bootstrap is `playcount bootstrap`"


def test_start_order_is_gated_by_health() -> None:
    services = compose()["services"]
    assert services["bootstrap"]["depends_on"] == {"localstack": {"condition": "service_healthy"}}
    for name in SERVICES:
        assert services[name]["depends_on"]["bootstrap"] == {"condition": "service_completed_successfully"}
    for name, spec in services.items():
        for dep, how in (spec.get("depends_on") or {}).items():
            assert how["condition"] in GATED, f"{name} -> {dep}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy but it has no healthcheck"


def _all_services() -> dict[str, Any]:
    """The base file's services plus the ones the Spark override adds (overrides are partial)."""
    base = compose()["services"]
    extra = {k: v for k, v in compose(SPARK_STANDALONE)["services"].items() if k not in base}
    return {**base, **extra}


def test_every_long_running_service_has_a_healthcheck() -> None:
    services = _all_services()
    for name, spec in services.items():
        if name == "bootstrap":
            continue
        test = spec.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"


def test_no_image_uses_latest_or_an_untagged_reference() -> None:
    services = _all_services()
    for name, spec in services.items():
        image = spec.get("image")
        if image:
            assert re.search(r":[\w][\w.\-]*$", image) and not image.endswith(":latest"), f"{name}: {image}"


def test_prometheus_scrapes_each_service_on_its_metrics_port() -> None:
    services = compose()["services"]
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    expected = set()
    for name in SERVICES:
        env = services[name]["environment"]
        port = env.get("METRICS_PORT") or env["API_PORT"]
        expected.add(f"{name}:{port}")
    assert targets == expected


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]


def _exprs() -> list[str]:
    return [t["expr"] for d in _dashboards() for p in d["panels"] for t in p.get("targets", [])]


def test_dashboard_uses_the_provisioned_datasource() -> None:
    uids = {ds["uid"] for f in DATASOURCES.glob("*.yml") for ds in yaml.safe_load(f.read_text())["datasources"]}
    for dashboard in _dashboards():
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, panel["title"]
    assert _exprs()


def _exposed_names() -> set[str]:
    """Every series name Playcount's processes expose, from the metric objects in the code."""
    import prometheus_client

    import playcount.api.telemetry
    import playcount.core.metrics  # noqa: F401  (importing registers the metrics)

    names = {"up"}
    for family in prometheus_client.REGISTRY.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        else:
            names.add(family.name)
    return names


def test_every_dashboard_query_names_a_metric_the_code_exposes() -> None:
    exposed = _exposed_names()
    used = {m for e in _exprs() for m in re.findall(r"\b(playcount_[a-z0-9_]+|up)\b", e)}
    assert used, "the dashboard queries no Playcount metric"
    assert used <= exposed, f"not exposed by any service: {used - exposed}"


@pytest.mark.skipif(not tool("promtool"), reason="promtool is not installed (Debian package `prometheus`)")
def test_promtool_accepts_the_config_and_every_dashboard_query(tmp_path: Path) -> None:
    promtool = str(tool("promtool"))
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = {
        "groups": [
            {"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(_exprs())]}
        ]
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
