"""Security scanners over what users deploy and run: checkov on the CloudFormation template and
the Dockerfile, bandit on the code of every workspace package an image can hold. Both pass with
no finding that is not suppressed in place with a written reason.

checkov pins boto3 exactly (1.35.x), which the services cannot share, so it runs from its own
environment, `.venv-checkov`, made by `scripts/setup.sh test` from hashed pins
(tools/checkov/requirements.txt). bandit is a dev dependency in uv.lock.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import DOCKERFILE, NEVER_IN_AN_IMAGE, ROOT, TEMPLATE, tool, workspace_members

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
DOCKERFILES = [DOCKERFILE]  # the one Dockerfile (test_dockerfiles.py checks there is no other)
# every workspace member's code but the devstack's, from the root pyproject: follows the workspace
CODE = sorted(
    str((d / "src").relative_to(ROOT)) for name, d in workspace_members().items() if name not in NEVER_IN_AN_IMAGE
)
MIN_REASON = 30  # characters: a reason, not a shrug


@pytest.fixture(scope="module")
def checkov() -> list[dict[str, Any]]:
    assert CHECKOV.exists(), "checkov's environment is missing: run scripts/setup.sh test"
    files = [a for p in (TEMPLATE, *DOCKERFILES) for a in ("-f", str(p.relative_to(ROOT)))]
    frameworks = ["--framework", "cloudformation", "dockerfile"]
    result = subprocess.run(
        [str(CHECKOV), *files, *frameworks, "-o", "json", "--compact"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        # offline: no guideline download from the vendor's API
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_NO_GUIDE": "TRUE"},
    )
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_checkov_scans_the_template_and_every_dockerfile(checkov: list[dict[str, Any]]) -> None:
    kinds = {r["check_type"]: r["summary"] for r in checkov}
    assert set(kinds) == {"cloudformation", "dockerfile"}
    assert kinds["cloudformation"]["resource_count"] > 50 and kinds["cloudformation"]["passed"] > 90
    scanned = {c["file_path"].lstrip("/") for r in checkov for c in r["results"]["passed_checks"]}
    assert {str(p.relative_to(ROOT)) for p in [TEMPLATE, *DOCKERFILES]} <= scanned
    assert all(s["parsing_errors"] == 0 for s in kinds.values())


def test_checkov_finds_nothing_that_is_not_suppressed_with_a_reason(checkov: list[dict[str, Any]]) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in checkov
        for c in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    for r in checkov:
        for c in r["results"]["skipped_checks"]:
            reason = (c["check_result"].get("suppress_comment") or "").strip()
            assert len(reason) >= MIN_REASON, f"{c['check_id']} on {c['resource']} is suppressed without a reason"


def test_bandit_finds_nothing_of_medium_severity_or_higher() -> None:
    exe = tool("bandit")
    assert exe, "bandit is part of the dev dependencies"
    result = subprocess.run(
        [exe, "-r", *CODE, "-f", "json", "-q"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    assert report["metrics"]["_totals"]["loc"] > 5000, "bandit must scan the code, not an empty tree"
    serious = [
        f"{f['filename']}:{f['line_number']} {f['test_id']} {f['issue_severity']}: {f['issue_text']}"
        for f in report["results"]
        if f["issue_severity"] in ("MEDIUM", "HIGH")
    ]
    assert not serious, "\n".join(serious)


def test_every_bandit_suppression_names_its_check_and_says_why() -> None:
    for root in CODE:
        for path in sorted((ROOT / root).rglob("*.py")):
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines):
                if "# nosec" not in line:
                    continue
                where = f"{path.relative_to(ROOT)}:{i + 1}"
                named = re.search(r"# nosec (B\d{3})\b", line)
                assert named, f"{where}: a suppression must name the check (# nosec Bxxx)"
                above = lines[i - 1].strip() if i else ""
                assert above.startswith("#") and named.group(1) in above and len(above) >= MIN_REASON, (
                    f"{where}: the line above must say why {named.group(1)} does not apply"
                )


def test_dockerfile_suppressions_say_why() -> None:
    for path in DOCKERFILES:
        for line in Path(path).read_text().splitlines():
            if "checkov:skip=" in line:
                reason = line.split(":", 2)[-1].strip()
                assert len(reason) >= MIN_REASON, f"{path}: {line}"
