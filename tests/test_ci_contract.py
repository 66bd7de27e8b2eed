"""Contract C3 from the Workload Identity side: the deployer identity is pinned to the `deploy` job of
DEPLOY_WORKFLOW on the deploy branch, in the GitHub environment named like the environment file.
These tests keep the WIF pin and the workflow files agreeing (the workflows themselves are linted in
tests/test_workflows.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataplatform.config import load_environments
from dataplatform.constructs.github_ci import DEPLOY_WORKFLOW
from tests.support import of_type

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = {e.name: e for e in load_environments()}


def test_the_pinned_workflow_has_a_deploy_job_in_the_callers_environment():
    workflow = yaml.safe_load((REPO / DEPLOY_WORKFLOW).read_text())
    job = workflow["jobs"]["deploy"]
    assert job["environment"] in ("${{ inputs.env }}", {"name": "${{ inputs.env }}"}), job.get("environment")
    triggers = workflow.get(True, workflow.get("on"))  # PyYAML reads the key `on` as True
    assert "workflow_call" in triggers, "a reusable workflow, called by the deploy workflow"


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_deployer_binding_names_that_job_branch_and_environment(stacks, env_name):
    env = ENVIRONMENTS[env_name]
    bindings = [b for b in of_type(stacks[f"{env_name}-bootstrap"], "google_service_account_iam_member").values()
                if b["role"] == "roles/iam.workloadIdentityUser" and "ci-deployer" in b["service_account_id"]]
    (binding,) = bindings
    expected = f"/attribute.deploy/{env.github.repository}/{DEPLOY_WORKFLOW}@refs/heads/{env.github.deploy_branch}:environment:{env_name}"
    assert binding["member"].endswith(expected)
    (provider,) = of_type(stacks[f"{env_name}-bootstrap"], "google_iam_workload_identity_pool_provider").values()
    mapping = provider["attribute_mapping"]["attribute.deploy"]
    assert "assertion.job_workflow_ref" in mapping and "assertion.environment" in mapping and "':environment:'" in mapping
