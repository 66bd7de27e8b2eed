"""`make diff/deploy` refuse clearly without Terraform, without credentials, or on the wrong project."""

from __future__ import annotations

import json

import pytest

from dataplatform.config import load_environments
from dataplatform.tools.cdktn_run import Refused, check

# Any two environments serve: the first is deployed, the second's project is the wrong one.
ENVS = load_environments()
ENV, OTHER = ENVS[0], ENVS[-1]


@pytest.fixture
def terraform_on_path(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tf = bin_dir / "terraform"
    tf.write_text("#!/bin/sh\n")
    tf.chmod(0o755)
    return str(bin_dir)


def creds(tmp_path, project):
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": project}))
    return str(path)


def test_runs_bootstrap_then_platform(tmp_path, terraform_on_path):
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, ENV.project_id)}
    assert check(ENV.name, env) == [f"{ENV.name}-bootstrap", f"{ENV.name}-platform"]


@pytest.mark.skipif(len(ENVS) < 2, reason="needs a second environment's project")
def test_refuses_credentials_of_another_project(tmp_path, terraform_on_path):
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, OTHER.project_id)}
    with pytest.raises(Refused, match=f"point at project '{OTHER.project_id}', but environments/{ENV.name}.yaml deploys to '{ENV.project_id}'"):
        check(ENV.name, env)


def test_explicit_project_wins_and_is_checked(tmp_path, terraform_on_path):
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, ENV.project_id), "GOOGLE_CLOUD_PROJECT": "other-proj"}
    with pytest.raises(Refused, match="'other-proj'"):
        check(ENV.name, env)


def test_refuses_without_terraform(tmp_path):
    with pytest.raises(Refused, match="no terraform"):
        check(ENV.name, {"PATH": str(tmp_path), "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, ENV.project_id)})


def test_refuses_without_credentials(tmp_path, terraform_on_path, monkeypatch):
    monkeypatch.setattr("dataplatform.tools.cdktn_run.ADC", tmp_path / "none.json")
    with pytest.raises(Refused, match="no Google credentials"):
        check(ENV.name, {"PATH": terraform_on_path})


def test_unknown_environment_is_a_clear_error(tmp_path, terraform_on_path):
    missing = "x" + "".join(e.name for e in ENVS)[:8]  # a name no environment file has
    with pytest.raises(Refused, match=rf"{missing}\.yaml:1: \(file\): cannot read: No such file or directory"):
        check(missing, {"PATH": terraform_on_path})
