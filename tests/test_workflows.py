"""GitHub workflows lint clean (actionlint) and pin every action to a commit SHA."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ACTIONLINT = REPO / ".build" / "bin" / "actionlint"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))

needs_actionlint = pytest.mark.skipif(not ACTIONLINT.exists(), reason="actionlint not built: run `make test` (it builds it)")


@needs_actionlint
def test_workflows_lint_clean():
    result = subprocess.run([str(ACTIONLINT), "-no-color", *map(str, WORKFLOWS)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path):
    """Guards against a lint that passes because it checks nothing."""
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    shutil.copy(REPO / ".github" / "workflows" / "pr.yml", wf / "pr.yml")
    text = (wf / "pr.yml").read_text().replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    if: ${{ github.event.nope.number == }}", 1)
    (wf / "pr.yml").write_text(text)
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(wf / "pr.yml")], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas(workflow):
    for line in workflow.read_text().splitlines():
        match = re.search(r"uses:\s*(\S+)", line)
        if match and not match.group(1).startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", match.group(1)), line


def test_deploys_are_serialized_per_environment_and_prod_needs_dev():
    deploy = (REPO / ".github" / "workflows" / "deploy.yml").read_text()
    reusable = (REPO / ".github" / "workflows" / "deploy-env.yml").read_text()
    assert "needs: dev" in deploy
    assert "group: deploy-${{ inputs.env }}" in reusable and "environment: ${{ inputs.env }}" in reusable
