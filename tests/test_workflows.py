"""GitHub workflows: actionlint clean, actions pinned, and their structure read from the parsed YAML:
deploys only in deploy-env.yml after the tests with Google credentials last, Go wherever make test
runs, caches, fork-safe comments, matrices derived from environments/, the approval check."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from dataplatform.tools import ci
from tests.support import environment_names

REPO = Path(__file__).resolve().parent.parent
ACTIONLINT = REPO / ".build" / "bin" / "actionlint"
WORKFLOW_DIR = REPO / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
SETUP_ACTION = REPO / ".github" / "actions" / "setup" / "action.yml"
AUTH = "google-github-actions/auth"

needs_actionlint = pytest.mark.skipif(not ACTIONLINT.exists(), reason="actionlint not built: run `make test` (it builds it)")


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


WF = {p.name: load(p) for p in WORKFLOWS}


def jobs(name: str) -> dict:
    return WF[name]["jobs"]


def action(step: dict) -> str:
    return step.get("uses", "").split("@")[0]


def commands(step: dict) -> list[str]:
    """The shell lines of a run step, one command each (backslash continuations joined)."""
    joined = re.sub(r"\s*\\\n\s*", " ", step.get("run", ""))
    return [line.strip() for line in joined.splitlines() if line.strip()]


def runs(step: dict, command: str) -> bool:
    return any(re.match(rf"{re.escape(command)}(\s|$)", line) for line in commands(step))


def all_steps():
    for name, wf in WF.items():
        for job_id, job in wf["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                yield name, job_id, index, step


@needs_actionlint
def test_workflows_lint_clean():
    result = subprocess.run([str(ACTIONLINT), "-no-color", *map(str, WORKFLOWS)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path):
    """Guards against a lint that passes because it checks nothing."""
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    broken = load(WORKFLOW_DIR / "pr.yml")
    broken["jobs"]["checks"]["if"] = "${{ github.event.nope.number == }}"
    (wf / "pr.yml").write_text(yaml.safe_dump(broken))
    result = subprocess.run([str(ACTIONLINT), "-no-color", str(wf / "pr.yml")], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and "pr.yml" in result.stdout


def _uses():
    for _, _, _, step in all_steps():
        if "uses" in step:
            yield step["uses"]
    for wf in WF.values():
        for job in wf["jobs"].values():
            if "uses" in job:
                yield job["uses"]
    for step in yaml.safe_load(SETUP_ACTION.read_text())["runs"]["steps"]:
        if "uses" in step:
            yield step["uses"]


@pytest.mark.parametrize("uses", sorted(set(_uses())))
def test_actions_are_pinned_to_commit_shas(uses):
    assert uses.startswith("./") or re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", uses), uses


# ---------------------------------------------------------------- deploys (contract C3)

def test_google_credentials_exist_only_in_the_deploy_job_and_the_read_only_plan():
    where = {(name, job_id) for name, job_id, _, step in all_steps() if action(step) == AUTH}
    assert where == {("deploy-env.yml", "deploy"), ("pr.yml", "plan")}
    plan_auth = next(s for n, j, _, s in all_steps() if (n, j) == ("pr.yml", "plan") and action(s) == AUTH)
    assert plan_auth["with"]["service_account"] == "${{ fromJSON(vars.CI_IDENTITIES)[matrix.env].plan }}"


def test_deploys_run_only_in_the_reusable_workflow_with_the_environment():
    deploying = {(name, job_id) for name, job_id, _, step in all_steps() if runs(step, "make deploy")}
    assert deploying == {("deploy-env.yml", "deploy")}
    job = jobs("deploy-env.yml")["deploy"]
    assert job["environment"] == "${{ inputs.env }}"
    assert job["concurrency"] == {"group": "deploy-${{ inputs.env }}", "cancel-in-progress": False}
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert WF["deploy-env.yml"]["on"]["workflow_call"]["inputs"]["env"]["required"] is True
    callers = [(j, job) for j, job in jobs("deploy.yml").items() if "uses" in job]
    assert {job["uses"] for _, job in callers} == {"./.github/workflows/deploy-env.yml"}


def test_google_auth_is_the_last_step_before_the_deploy_and_after_the_tests():
    steps = jobs("deploy-env.yml")["deploy"]["steps"]
    auth = next(i for i, s in enumerate(steps) if action(s) == AUTH)
    test = next(i for i, s in enumerate(steps) if runs(s, "make test"))
    deploy = next(i for i, s in enumerate(steps) if runs(s, "make deploy"))
    assert test < auth and auth + 1 == deploy == len(steps) - 1


def test_protected_environments_deploy_after_the_others_and_need_reviewers():
    deploy = jobs("deploy.yml")
    assert deploy["deploy"]["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.environments.outputs.first) }}"
    assert deploy["deploy-protected"]["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.environments.outputs.protected) }}"
    assert deploy["deploy-protected"]["needs"] == ["environments", "deploy"]
    env_jobs = jobs("deploy-env.yml")
    assert env_jobs["deploy"]["needs"] == "approval" and "if" not in env_jobs["deploy"]
    (validate, check) = [s for s in env_jobs["approval"]["steps"] if "run" in s]
    assert commands(validate) == ["make check"]
    assert commands(check) == ['gh api "repos/${GITHUB_REPOSITORY}/environments/${ENV_NAME}" 2>/dev/null '
                               '| .venv/bin/python -m dataplatform.tools.ci require-reviewers "${ENV_NAME}"']
    assert env_jobs["approval"]["permissions"] == {"actions": "read", "contents": "read"}


# ---------------------------------------------------------------- derived from environments/

def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("name", [p.name for p in WORKFLOWS])
def test_no_workflow_names_an_environment(name):
    words = {w for s in _strings(WF[name]) for w in re.findall(r"[A-Za-z0-9_-]+", s.replace("/dev/null", ""))}
    assert not words & set(environment_names())


def test_matrices_come_from_the_environment_files():
    for name, wf in WF.items():
        for job_id, job in wf["jobs"].items():
            matrix = job.get("strategy", {}).get("matrix")
            if matrix:
                assert matrix["env"].startswith("${{ fromJSON(needs.environments.outputs."), (name, job_id)
    for name in ("pr.yml", "deploy.yml"):
        setup, check, step = jobs(name)["environments"]["steps"][1:]
        assert setup["uses"] == "./.github/actions/setup" and commands(check) == ["make check"]
        assert commands(step) == [".venv/bin/python -m dataplatform.tools.ci matrix"]
        assert step["env"] == {"CI_IDENTITIES": "${{ vars.CI_IDENTITIES }}"}


# ---------------------------------------------------------------- setup, caches, forks

def _setup_steps() -> list[dict]:
    return yaml.safe_load(SETUP_ACTION.read_text())["runs"]["steps"]


def test_go_is_set_up_wherever_make_test_or_validate_runs():
    for name, wf in WF.items():
        for job_id, job in wf["jobs"].items():
            steps = job.get("steps", [])
            if any(runs(s, "make test") or runs(s, "make validate") for s in steps):
                setup = [s for s in steps if s.get("uses") == "./.github/actions/setup"]
                assert setup and setup[0].get("with", {}).get("go", "true") == "true", (name, job_id)
    go = next(s for s in _setup_steps() if action(s) == "actions/setup-go")
    assert go["if"] == "inputs.go == 'true'" and go["with"]["cache"] is True


def test_every_job_that_runs_make_restores_the_package_caches():
    for name, wf in WF.items():
        for job_id, job in wf["jobs"].items():
            steps = job.get("steps", [])
            if any(re.search(r"(^|[;&|{(]\s*)make\s", line) for s in steps for line in commands(s)):
                assert any(s.get("uses") == "./.github/actions/setup" for s in steps), (name, job_id)
    cache = next(s for s in _setup_steps() if action(s) == "actions/cache")
    assert set(cache["with"]["path"].split()) == {"~/.cache/uv", "~/.cache/pip", "~/.npm"}
    outputs = {".venv", "node_modules", "cdktf.out", ".build"}
    locks = sorted(p.relative_to(REPO).as_posix() for p in REPO.rglob("Pipfile.lock") if not outputs & set(p.relative_to(REPO).parts))
    hashed = ", ".join(f"'{lock}'" for lock in [*locks, "package-lock.json"])
    assert cache["with"]["key"] == f"packages-${{{{ runner.os }}}}-${{{{ hashFiles({hashed}) }}}}"  # every lock file the installs read


def test_pull_request_workflow_cannot_write_and_the_comment_workflow_runs_no_pr_code():
    pr = WF["pr.yml"]
    assert pr["permissions"] == {"contents": "read"}
    for job in pr["jobs"].values():
        assert "pull-requests" not in job.get("permissions", {})
    assert jobs("pr.yml")["plan"]["if"] == ("needs.environments.outputs.configured != '[]' && "
                                           "github.event.pull_request.head.repo.full_name == github.repository")
    comment = WF["pr-comment.yml"]
    assert comment["on"] == {"workflow_run": {"workflows": ["pull-request"], "types": ["completed"]}}
    assert comment["permissions"] == {}
    steps = comment["jobs"]["comment"]["steps"]
    assert not any(action(s) == "actions/checkout" or runs(s, "make") for s in steps)
    posts = [s for s in steps if action(s) == "marocchino/sticky-pull-request-comment"]
    assert posts and all(s["with"]["number_force"] == "${{ steps.pr.outputs.number }}" for s in posts)
    check = next(s for s in steps if s.get("id") == "pr")
    assert 'if [ "$head" != "$HEAD_SHA" ]; then echo "::error::pull request #${number} is not at ${HEAD_SHA}"; exit 1; fi' in commands(check)


# ---------------------------------------------------------------- the matrix tool

def test_matrix_before_the_identities_exist_deploys_nothing_with_a_notice():
    names = environment_names()
    outputs, notices = ci.matrix(names, "", ci.protected_environments())
    assert outputs == {"environments": names, "configured": [], "first": [], "protected": []}
    assert notices == ["::notice::CI_IDENTITIES is not set: no environment is planned or deployed yet "
                       "(README: Setting up the CI identities)"]


def test_matrix_splits_configured_environments_and_names_the_rest():
    identities = json.dumps({"alpha": {"provider": "p"}, "beta": {"provider": "p"}, "gone": {}})
    outputs, notices = ci.matrix(["alpha", "beta", "gamma"], identities, protected={"beta"})
    assert outputs == {"environments": ["alpha", "beta", "gamma"], "configured": ["alpha", "beta"], "first": ["alpha"],
                       "protected": ["beta"]}
    assert notices == ["::notice::gamma: not in CI_IDENTITIES, so not planned or deployed (README: Setting up the CI identities)",
                       "::warning::CI_IDENTITIES names 'gone', which has no environments/gone.yaml"]


def test_protected_means_deliberate_promotion_in_the_environment_file(environments):
    from dataplatform.config import Promotion

    assert ci.protected_environments() == [n for n, e in environments.items() if e.cicd.promotion is Promotion.approval]


def test_matrix_with_broken_identities_deploys_nothing():
    outputs, notices = ci.matrix(["alpha"], "{not json", protected=())
    assert outputs["configured"] == [] and notices[0].startswith("::warning::CI_IDENTITIES is not valid JSON")


def test_matrix_command_writes_github_outputs(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("CI_IDENTITIES", "")
    assert ci.main(["matrix"]) == 0
    lines = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert json.loads(lines["environments"]) == environment_names() and json.loads(lines["configured"]) == []


PROTECTED = "beta"
REVIEWERS = {"name": PROTECTED, "protection_rules": [{"type": "required_reviewers", "reviewers": [{"type": "User"}]}]}


@pytest.mark.parametrize("response,problem", [
    (REVIEWERS, None),
    ({"name": PROTECTED, "protection_rules": [{"type": "wait_timer", "wait_timer": 5}]}, "has no required reviewers"),
    ({"name": PROTECTED, "protection_rules": [{"type": "required_reviewers", "reviewers": []}]}, "has no required reviewers"),
    ({"name": PROTECTED}, "has no required reviewers"),
    ({"message": "Not Found", "status": "404"}, "does not exist (Not Found)"),
    ("", "no JSON from the API"),
])
def test_protected_environment_without_reviewers_is_refused(response, problem):
    found = ci.reviewers_problem(PROTECTED, json.dumps(response) if response != "" else "")
    assert found is None if problem is None else problem in found


def test_require_reviewers_exit_codes(monkeypatch, capsys):
    import io

    monkeypatch.setattr(ci, "protected_environments", lambda: [PROTECTED])
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(REVIEWERS)))
    assert ci.main(["require-reviewers", PROTECTED]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"name": PROTECTED, "protection_rules": []})))
    assert ci.main(["require-reviewers", PROTECTED]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"::error::GitHub environment '{PROTECTED}' has no required reviewers")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert ci.main(["require-reviewers", "alpha"]) == 0  # not protected: nothing asked of it
