"""`make diff/deploy`: refusals, and the deploy flow on an empty project, a re-run, an interrupted
migration, missing secrets and failures, with Terraform/cdktn replaced by a scripted runner."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dataplatform.config import load_environments
from dataplatform.tools import cdktn_run
from dataplatform.tools.cdktn_run import Deployment, Refused, Runner, check
from tests.fake_google import FakeApis

ENVS = load_environments()
ENV = ENVS[0]  # the first environment file: the flow is the same for every one
NAME = ENV.name


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
    assert check(NAME, env) == [f"{NAME}-bootstrap", f"{NAME}-platform"]


def test_refuses_credentials_of_another_project(tmp_path, terraform_on_path):
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, "someone-elses")}
    with pytest.raises(Refused, match=f"point at project 'someone-elses', but environments/{NAME}.yaml deploys to '{ENV.project_id}'"):
        check(NAME, env)


def test_explicit_project_wins_and_is_checked(tmp_path, terraform_on_path):
    env = {"PATH": terraform_on_path, "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, ENV.project_id), "GOOGLE_CLOUD_PROJECT": "other-proj"}
    with pytest.raises(Refused, match="'other-proj'"):
        check(NAME, env)


def test_refuses_without_terraform(tmp_path):
    with pytest.raises(Refused, match="no terraform"):
        check(NAME, {"PATH": str(tmp_path), "GOOGLE_APPLICATION_CREDENTIALS": creds(tmp_path, ENV.project_id)})


def test_refuses_without_credentials(tmp_path, terraform_on_path, monkeypatch):
    monkeypatch.setattr("dataplatform.tools.cdktn_run.ADC", tmp_path / "none.json")
    with pytest.raises(Refused, match="no Google credentials"):
        check(NAME, {"PATH": terraform_on_path})


def test_unknown_environment_is_a_clear_error(tmp_path, terraform_on_path):
    missing = "x" + "".join(e.name for e in ENVS)[:8]  # a name no environment file has
    with pytest.raises(Refused, match=rf"{missing}\.yaml:1: \(file\): cannot read: No such file or directory"):
        check(missing, {"PATH": terraform_on_path})


# ---------------------------------------------------------------- the flow


class ScriptedRunner:
    """Stands in for Runner: answers each command like Terraform/cdktn would on a fake project."""

    def __init__(self, repo: Path, *, bucket: bool, remote_state: dict | None = None, answer: bool = True,
                 fail_on: str | None = None, interactive: bool = True):
        self.repo, self.bucket, self.remote = repo, bucket, remote_state
        self.answer, self.fail_on, self.interactive = answer, fail_on, interactive
        self.commands: list[tuple[list[str], dict]] = []
        self.notes: list[str] = []
        self.backend = "gcs"
        self.log_path = repo / "cdktf.out" / "logs" / "test.log"

    def note(self, line):
        self.notes.append(line)

    def ask(self, question):
        self.notes.append(f"? {question}")
        return self.answer and self.interactive

    def close(self):
        pass

    @property
    def local(self) -> Path:
        return self.repo / "state" / f"{NAME}-bootstrap.tfstate"

    def run(self, cmd, *, cwd, env, echo=True):
        self.commands.append((cmd, env))
        line = " ".join(("python" if c == sys.executable else Path(c).name) if i == 0 else c for i, c in enumerate(cmd))
        if self.fail_on and self.fail_on in line:
            return 1, "Planning...\n│ Error: googleapi: Error 403: Permission denied on resource project\n"
        if cmd[1:2] == ["main.py"]:
            self.backend = env.get("DP_BOOTSTRAP_BACKEND", "gcs")
            return 0, "synthesized"
        if line.startswith("terraform init"):
            return (0, "Terraform has been successfully initialized!") if self.bucket else \
                (1, "Error: Failed to get existing workspaces: querying Cloud Storage failed: storage: bucket doesn't exist")
        if line == "terraform state pull":
            return 0, json.dumps(self.remote) if self.remote else ""
        if line.startswith("terraform state push"):
            self.remote = json.loads(Path(cmd[-1]).read_text())
            return 0, ""
        if line.startswith(f"cdktn deploy {NAME}-bootstrap"):
            self.bucket = True
            if self.backend == "local":
                self.local.parent.mkdir(parents=True, exist_ok=True)
                self.local.write_text(json.dumps(STATE))
            else:
                self.remote = {**(self.remote or STATE), "serial": (self.remote or STATE)["serial"] + 1}
        return 0, f"ran {line}"

    def lines(self) -> list[str]:
        return [" ".join(("python" if c == sys.executable else Path(c).name) if i == 0 else c for i, c in enumerate(cmd))
                for cmd, _ in self.commands]


STATE = {"version": 4, "lineage": "b00t", "serial": 7, "resources": [{"type": "google_storage_bucket"}]}
ENVIRON = {"PATH": "/nonexistent", "GOOGLE_OAUTH_ACCESS_TOKEN": "token", "HOME": "/tmp"}


def secrets_api(filled: bool = True) -> FakeApis:
    from dataplatform.constructs.secret import secret_id

    base = f"https://secretmanager.googleapis.com/v1/projects/{ENV.project_id}/secrets"
    routes = {}
    for key in ("mail-api-key", "github-oauth-token"):
        sid = secret_id(ENV.namer, key)
        if key == "github-oauth-token":
            routes[f"GET {base}/{sid}/versions/{ENV.cicd.oauth_token_secret_version}"] = (200, {"state": "ENABLED"}) if filled else (404, {})
        else:
            routes[f"GET {base}/{sid}/versions?filter=state%3AENABLED"] = (200, {"versions": [{"name": "1"}]} if filled else {})
    return FakeApis(routes)


@pytest.fixture
def tf(monkeypatch):
    monkeypatch.setattr(cdktn_run, "terraform_binary", lambda environ: "/usr/bin/terraform")


def deploy(runner, *, only=None, auto_approve=False, api=None):
    deployment = Deployment(ENV, dict(ENVIRON), runner, auto_approve=auto_approve, repo=runner.repo)
    with (api or secrets_api()).installed():
        return deployment.deploy(only)


def test_first_deploy_on_an_empty_project_leaves_no_state_on_the_laptop(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=False)
    assert deploy(runner) == cdktn_run.EXIT_OK
    assert runner.lines() == [
        "python main.py",  # GCS backend: is there a state bucket?
        "terraform init -input=false -no-color -reconfigure",  # ... no: first deploy
        "python main.py",  # local backend
        f"cdktn diff {NAME}-bootstrap --skip-synth --no-color",
        f"cdktn deploy {NAME}-bootstrap --skip-synth --no-color --auto-approve",
        "python main.py",  # GCS backend again
        f"terraform state push {tmp_path}/state/{NAME}-bootstrap.tfstate",
        "terraform init -input=false -no-color -reconfigure",
        "terraform state pull",  # verified
        f"cdktn diff {NAME}-platform --skip-synth --no-color",
        f"cdktn deploy {NAME}-platform --skip-synth --no-color --auto-approve",
    ]
    assert not runner.local.exists(), "the local state is deleted once the bucket holds it"
    assert runner.remote == STATE
    local_synths = [cmd for cmd, env in runner.commands if env.get("DP_BOOTSTRAP_BACKEND") == "local"]
    assert len(local_synths) == 1 and local_synths[0][1:] == ["main.py"], "only the first bootstrap apply uses local state"
    assert all(env["DP_ENVIRONMENTS"] == NAME and env["CHECKPOINT_DISABLE"] == "1" and env["NO_COLOR"] == "1"
               for _, env in runner.commands), "one environment synthesized, no checkpoint calls, no colours"


def test_a_rerun_applies_bootstrap_from_the_bucket_then_the_platform(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state=STATE)
    assert deploy(runner, auto_approve=True) == cdktn_run.EXIT_OK
    assert runner.lines() == [
        "python main.py", "terraform init -input=false -no-color -reconfigure", "terraform state pull",
        f"cdktn deploy {NAME}-bootstrap --skip-synth --no-color --auto-approve",
        f"cdktn deploy {NAME}-platform --skip-synth --no-color --auto-approve",
    ]
    assert all("DP_BOOTSTRAP_BACKEND" not in env for _, env in runner.commands)


def test_missing_secret_values_stop_before_the_platform_and_say_how_to_fill_them(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state=STATE)
    assert deploy(runner, auto_approve=True, api=secrets_api(filled=False)) == cdktn_run.EXIT_WAITING
    assert not any(f"{NAME}-platform" in line for line in runner.lines())
    fills = [n for n in runner.notes if "fill this secret" in n]
    assert len(fills) == 2 and all("gcloud secrets versions add" in n for n in fills)
    assert runner.notes[-1] == f"deploy {NAME}: waiting for the secret values above; then run make deploy ENV={NAME} again"


def test_an_interrupted_migration_is_finished(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state=STATE)
    runner.local.parent.mkdir(parents=True)
    runner.local.write_text(json.dumps(STATE))  # pushed, but not yet deleted
    assert deploy(runner, auto_approve=True) == cdktn_run.EXIT_OK
    assert not runner.local.exists()


def test_a_local_state_without_a_bucket_state_finishes_the_first_deploy(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=False)
    runner.local.parent.mkdir(parents=True)
    runner.local.write_text(json.dumps(STATE))  # an earlier run stopped after the local apply
    assert deploy(runner, auto_approve=True) == cdktn_run.EXIT_OK
    assert "terraform state push" in " ".join(runner.lines()) and not runner.local.exists()


def test_diverging_local_and_bucket_states_are_refused(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state={**STATE, "serial": 9})
    runner.local.parent.mkdir(parents=True)
    runner.local.write_text(json.dumps(STATE))
    with pytest.raises(Refused, match="both hold a bootstrap state and they differ"):
        deploy(runner, auto_approve=True)
    assert runner.local.exists(), "nothing deleted"


def test_a_bucket_without_bootstrap_state_is_refused(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state=None)
    with pytest.raises(Refused, match="holds no .*/bootstrap state"):
        deploy(runner, auto_approve=True)


def test_ci_deploys_only_the_platform(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state=STATE, interactive=False)
    assert deploy(runner, only="platform", auto_approve=True) == cdktn_run.EXIT_OK
    assert runner.lines() == ["python main.py", f"cdktn deploy {NAME}-platform --skip-synth --no-color --auto-approve"]


def test_without_a_terminal_a_deploy_needs_auto_approve(tmp_path, tf):
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state=STATE, interactive=False)
    with pytest.raises(cdktn_run.StepFailed, match=f"^apply {NAME}-platform$") as info:
        deploy(runner, only="platform")
    assert "pass --auto-approve" in info.value.error
    assert not any(line.startswith("cdktn deploy") for line in runner.lines())


def test_a_failure_is_one_line_naming_the_step_the_error_and_the_log(tmp_path, tf, capsys, monkeypatch):
    monkeypatch.setattr(cdktn_run, "check", lambda env, environ: [f"{env}-bootstrap", f"{env}-platform"])
    runner = ScriptedRunner(tmp_path, bucket=True, remote_state=STATE, fail_on=f"cdktn deploy {NAME}-platform")
    monkeypatch.setattr(cdktn_run, "Deployment", lambda env, environ, runner, auto_approve: Deployment(
        env, environ, runner, auto_approve=auto_approve, repo=tmp_path))
    with secrets_api().installed():
        code = cdktn_run.main(["deploy", NAME, "--auto-approve"], environ=dict(ENVIRON), runner=runner)
    assert code == cdktn_run.EXIT_FAILED
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"deploy {NAME}: failed at cdktn deploy {NAME}-platform (exit 1): Error: googleapi: Error 403: Permission denied "
                    f"on resource project; full output: {runner.log_path}")


def test_the_runner_strips_colours_and_keeps_everything_in_the_log(tmp_path):
    import io

    out = io.StringIO()
    runner = Runner(tmp_path / "logs" / "x.log", out=out, interactive=False)
    rc, output = runner.run(["printf", "\\033[31mred\\033[0m plain\\n\\033[1mbold\\033[0m\\n"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    runner.close()
    assert rc == 0 and output == "red plain\nbold"
    assert "\x1b" not in out.getvalue() and "\x1b" not in (tmp_path / "logs" / "x.log").read_text()
    assert "red plain" in (tmp_path / "logs" / "x.log").read_text()


@pytest.mark.parametrize("output, expected", [
    ("a\n│ Error: googleapi: Error 400: bad\nb", "Error: googleapi: Error 400: bad"),
    ("a\nlast words\n\n", "last words"),
    ("", "no output"),
])
def test_first_error(output, expected):
    assert cdktn_run.first_error(output) == expected
