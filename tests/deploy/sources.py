"""The deployment files, loaded for the offline checks: compose, Dockerfiles, the template.

Nothing here needs a Docker engine or AWS; each loader reads the file as its tool would.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SPARK_STANDALONE = ROOT / "deploy" / "compose" / "spark-standalone.yml"
TEMPLATE = ROOT / "infra" / "playcount.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"

# service directory -> (workspace package, console script); the images the compose file builds
SERVICES = {
    "ingest-validator": ("playcount-ingest-validator", "playcount-validator"),
    "kpi-spark-runner": ("playcount-kpi-spark-runner", "playcount-runner"),
    "dynamo-writer": ("playcount-dynamo-writer", "playcount-writer"),
    "query-api": ("playcount-query-api", "playcount-api"),
}
BOOTSTRAP_DOCKERFILE = ROOT / "deploy" / "bootstrap" / "Dockerfile"


def tool(name: str) -> str | None:
    """A command from the project's venv, else from PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def compose(path: Path = COMPOSE) -> dict[str, Any]:
    """The compose file as YAML (anchors and `<<` merges resolved, no variable interpolation)."""
    return dict(yaml.safe_load(path.read_text()))


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags: `!Sub x` becomes {"Fn::Sub": x}, `!Ref x` {"Ref": x}."""


def _short_form(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)


def template() -> dict[str, Any]:
    """The CloudFormation template with short-form tags (!Ref, !Sub...) in their long form."""
    return dict(yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader))


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def stages(self) -> list[list[Instruction]]:
        """Instructions grouped by build stage (everything before the first FROM is global)."""
        out: list[list[Instruction]] = []
        for i in self.instructions:
            if i.keyword == "FROM":
                out.append([])
            if out:
                out[-1].append(i)
        return out

    def final_stage(self) -> list[Instruction]:
        return self.stages()[-1]

    def args(self) -> dict[str, str]:
        """ARG defaults, from every ARG instruction in the file."""
        out = {}
        for i in self.all("ARG"):
            name, _, default = i.args.partition("=")
            out[name.strip()] = default.strip()
        return out

    def uv_syncs(self) -> list[list[str]]:
        """Every `uv sync ...` command line in a RUN, as argument lists."""
        found = []
        for i in self.all("RUN"):
            for part in re.split(r"&&|;", i.args):
                words = shlex.split(part)
                for k in range(len(words) - 1):
                    if words[k] == "uv" and words[k + 1] == "sync":
                        found.append(words[k:])
        return found


def dockerfile(path: Path) -> Dockerfile:
    """Parse a Dockerfile into instructions: continuation lines joined, comments dropped."""
    instructions = []
    pending = ""
    start = 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    return Dockerfile(path, tuple(instructions))


def service_dockerfiles() -> dict[str, Dockerfile]:
    return {name: dockerfile(ROOT / "services" / name / "Dockerfile") for name in SERVICES}
