"""`make diff/deploy` refuse clearly without Terraform, without credentials, or on the wrong project."""

from __future__ import annotations

import json

import pytest

from dataplatform.tools.cdktn_run import Refused, check


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
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, "acme-data-dev")}
    assert check("dev", env) == ["dev-bootstrap", "dev-platform"]


def test_refuses_credentials_of_another_project(tmp_path, terraform_on_path):
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, "acme-data-prod")}
    with pytest.raises(Refused, match="point at project 'acme-data-prod', but environments/dev.yaml deploys to 'acme-data-dev'"):
        check("dev", env)


def test_explicit_project_wins_and_is_checked(tmp_path, terraform_on_path):
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, "acme-data-dev"), "GOOGLE_CLOUD_PROJECT": "other-proj"}
    with pytest.raises(Refused, match="'other-proj'"):
        check("dev", env)


def test_refuses_without_terraform(tmp_path):
    with pytest.raises(Refused, match="no terraform"):
        check("dev", {"PATH": str(tmp_path), "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, "acme-data-dev")})


def test_refuses_without_credentials(tmp_path, terraform_on_path, monkeypatch):
    monkeypatch.setattr("dataplatform.tools.cdktn_run.ADC", tmp_path / "none.json")
    with pytest.raises(Refused, match="no Google credentials"):
        check("dev", {"PATH": terraform_on_path})


def test_unknown_environment_is_a_clear_error(tmp_path, terraform_on_path):
    with pytest.raises(Refused, match="staging.yaml: cannot read file"):
        check("staging", {"PATH": terraform_on_path})
