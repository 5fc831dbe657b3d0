"""The deployment files, loaded for the offline checks: compose, the Dockerfile, the template,
and the uv workspace the images are built from.

Nothing here needs a Docker engine or AWS; each loader reads the file as its tool would.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SPARK_STANDALONE = ROOT / "deploy" / "compose" / "spark-standalone.yml"
TEMPLATE = ROOT / "infra" / "playcount.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "uv.lock"

# service directory -> (workspace package, console script); the images the compose file builds
SERVICES = {
    "ingest-validator": ("playcount-ingest-validator", "playcount-validator"),
    "kpi-spark-runner": ("playcount-kpi-spark-runner", "playcount-runner"),
    "dynamo-writer": ("playcount-dynamo-writer", "playcount-writer"),
    "query-api": ("playcount-query-api", "playcount-api"),
}


class Image(NamedTuple):
    """One target of the Dockerfile: the SERVICE build argument it is built with, the workspace
    package that argument makes the builder install, and the console script it runs."""

    service: str
    package: str
    entrypoint: str


# Dockerfile target -> the image it builds (the target is also the image's name: playcount/<target>)
TARGETS = {
    **{name: Image(name, package, script) for name, (package, script) in SERVICES.items()},
    "cli": Image("cli", "playcount-cli", "playcount"),  # the compose `bootstrap` (`playcount bootstrap`)
}
# workspace packages no image may hold: the developer's embedded stack (moto, every service in one)
NEVER_IN_AN_IMAGE = {"playcount-devstack"}


def workspace_members() -> dict[str, Path]:
    """Package name -> directory of every member of the root pyproject's `[tool.uv.workspace]`
    (its `members` globs expanded, `exclude` applied), found as uv finds them."""
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    excluded = {d for pattern in workspace.get("exclude", []) for d in ROOT.glob(pattern)}
    members = {}
    for pattern in workspace["members"]:
        for directory in sorted(ROOT.glob(pattern)):
            if directory.is_dir() and directory not in excluded and (directory / "pyproject.toml").exists():
                name = tomllib.loads((directory / "pyproject.toml").read_text())["project"]["name"]
                members[name] = directory
    return members


def locked_workspace_closure(package: str) -> dict[str, Path]:
    """The workspace packages `uv sync --frozen --package <package>` installs, as the lock says:
    the package and every member it depends on (through extras too) -> their directories."""
    locked = {
        p["name"]: p
        for p in tomllib.loads(LOCK.read_text())["package"]
        if "editable" in p["source"] or "directory" in p["source"]
    }
    found: dict[str, Path] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(package, ())]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen or name not in locked:
            continue
        seen.add((name, extras))
        entry = locked[name]
        found[name] = ROOT / (entry["source"].get("editable") or entry["source"]["directory"])
        deps = list(entry.get("dependencies", []))
        for extra in extras:
            deps += entry.get("optional-dependencies", {}).get(extra, [])
        todo += [(d["name"], tuple(d.get("extra", ()))) for d in deps]
    return found


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


def expand(text: str, values: dict[str, str]) -> str:
    """`${NAME}` and `$NAME` replaced from `values` (others left as they are), as the builder does."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


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

    @staticmethod
    def name_of(stage: list[Instruction]) -> str:
        """The stage's `AS` name ("" for an unnamed stage)."""
        words = stage[0].args.split()
        return words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else ""

    def stage(self, name: str) -> list[Instruction]:
        (found,) = [s for s in self.stages() if self.name_of(s) == name]
        return found

    def chain(self, target: str) -> list[list[Instruction]]:
        """The stages an image is made of, first to last: `target`, the stage it is FROM, and so on
        down to the one FROM an external image. The last one is `target` itself."""
        names = {self.name_of(s) for s in self.stages()}
        out = [self.stage(target)]
        while (base := out[0][0].args.split()[0]) in names:
            out.insert(0, self.stage(base))
        return out

    def image(self, target: str) -> list[Instruction]:
        """Every instruction that shapes the final image of `target` (its whole FROM chain)."""
        return [i for stage in self.chain(target) for i in stage]

    def needs(self, target: str) -> list[str]:
        """The stages building `target` runs: its chain and every stage a COPY --from names, recursively."""
        names = {self.name_of(s) for s in self.stages()}
        found: list[str] = []
        todo = [target]
        while todo:
            name = todo.pop()
            if name in found:
                continue
            found.append(name)
            for stage in self.chain(name):
                todo.append(self.name_of(stage))
                for i in stage:
                    if i.keyword == "COPY" and (m := re.search(r"--from=(\S+)", i.args)) and m.group(1) in names:
                        todo.append(m.group(1))
        return [n for n in (self.name_of(s) for s in self.stages()) if n in found]

    def args(self, **given: str) -> dict[str, str]:
        """ARG values as the builder sees them: `given` (--build-arg) over the defaults, each default
        expanded with the ARGs before it; an ARG re-declared without a default keeps its value."""
        out: dict[str, str] = {}
        for i in self.all("ARG"):
            name, eq, default = i.args.partition("=")
            name = name.strip()
            if name in given:
                out[name] = given[name]
            elif eq:
                out[name] = expand(default.strip(), out)
            else:
                out.setdefault(name, "")
        return out

    def uv_syncs(self, stages: list[list[Instruction]] | None = None) -> list[list[str]]:
        """Every `uv sync ...` command line in a RUN (of `stages`, else of the file), as argument lists."""
        runs = [i for stage in stages for i in stage if i.keyword == "RUN"] if stages is not None else self.all("RUN")
        found = []
        for i in runs:
            for part in re.split(r"&&|;", i.args):
                words = shlex.split(part)
                for k in range(len(words) - 1):
                    if words[k] == "uv" and words[k + 1] == "sync":
                        found.append(words[k:])
        return found


def dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
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
