"""`make diff ENV=..` / `make deploy ENV=..`: one environment's stacks, in order, in one command.

`make deploy ENV=dev` on an empty project, with an owner's credentials:
1. applies `<env>-bootstrap` with *local* state (the state bucket does not exist yet),
2. moves that state into the bucket it just created (`gs://<state bucket>/<env>/bootstrap`) and
   deletes the local copy: no state is left on a laptop,
3. checks that the hand-filled secrets hold a value; if not, prints the `gcloud secrets versions
   add` commands and stops (exit 4): fill them, run the same command again,
4. applies `<env>-platform` (state in the bucket).
Re-runnable: each run finds where the bootstrap state is (local file, bucket, nowhere) and goes on
from there; an interrupted migration is finished, two diverging states are refused. CI runs only
the platform (ONLY=platform): the deployer identity cannot change the bootstrap.

Refuses to run, with one clear line, when the Terraform binary or credentials are missing, or when
the credentials name another project than the environment file. Every command's output goes to
cdktf.out/logs/<command>-<env>-<time>.log (ANSI codes stripped, also on screen); a failure ends
with one line naming the step, the first error and the log. Only the environment deployed is
synthesized (DP_ENVIRONMENTS), and Terraform's checkpoint calls are off (CHECKPOINT_DISABLE=1).

Exit status: 0 done, 1 a step failed, 2 refused (see the message), 4 waiting for a manual step.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from dataplatform.config import ENVIRONMENTS_DIR, REPO_ROOT, ConfigError, Environment, load_environment

ADC = Path.home() / ".config" / "gcloud" / "application_default_credentials.json"
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_WAITING = 0, 1, 2, 4
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][AB012]")
QUIET_ENV = {
    "CHECKPOINT_DISABLE": "1",  # no calls to HashiCorp's checkpoint service (Terraform, cdktn telemetry)
    "NO_COLOR": "1", "FORCE_COLOR": "0",  # no ANSI from cdktn / Node
    "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
}
_ERROR = re.compile(r"(^|\s)(Error|ERROR)[:\s]")


class Refused(Exception):
    pass


class StepFailed(Exception):
    def __init__(self, step: str, returncode: int, error: str):
        super().__init__(step)
        self.step, self.returncode, self.error = step, returncode, error


def credentials_project(environ: dict[str, str]) -> tuple[str, str | None]:
    """(where the credentials come from, the project they name or None)."""
    explicit = environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("CLOUDSDK_CORE_PROJECT") or environ.get("GOOGLE_PROJECT")
    if environ.get("GOOGLE_OAUTH_ACCESS_TOKEN"):
        return "GOOGLE_OAUTH_ACCESS_TOKEN", explicit
    path = environ.get("GOOGLE_APPLICATION_CREDENTIALS") or (str(ADC) if ADC.exists() else None)
    if not path:
        raise Refused("no Google credentials: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS "
                      "(in CI the auth action sets it from Workload Identity Federation)")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise Refused(f"cannot read credentials file {path}: {exc}") from None
    return path, explicit or data.get("project_id") or data.get("quota_project_id")


def terraform_binary(environ: dict[str, str]) -> str:
    found = shutil.which("terraform", path=environ.get("PATH")) or shutil.which("tofu", path=environ.get("PATH"))
    if not found:
        raise Refused("no terraform (or tofu) binary on PATH: cdktn runs Terraform to diff and deploy; install Terraform >= 1.9")
    return found


def check(env_name: str, environ: dict[str, str], environments_dir: Path = ENVIRONMENTS_DIR) -> list[str]:
    """The stacks to run, in order, after every refusal check."""
    env = load_env(env_name, environments_dir)
    terraform_binary(environ)
    source, project = credentials_project(environ)
    if project is None:
        raise Refused(f"credentials from {source} name no project: set GOOGLE_CLOUD_PROJECT={env.project_id}")
    if project != env.project_id:
        raise Refused(f"credentials from {source} point at project {project!r}, but environments/{env_name}.yaml deploys "
                      f"to {env.project_id!r}; refusing")
    return [f"{env_name}-bootstrap", f"{env_name}-platform"]


def load_env(env_name: str, environments_dir: Path = ENVIRONMENTS_DIR) -> Environment:
    try:
        return load_environment(environments_dir / f"{env_name}.yaml")
    except ConfigError as exc:
        raise Refused(str(exc)) from None


# ---------------------------------------------------------------- the process boundary


@dataclass
class Runner:
    """Runs commands with output to the screen and the log (ANSI stripped); asks yes/no questions."""

    log_path: Path
    out: TextIO = field(default_factory=lambda: sys.stdout)
    interactive: bool = field(default_factory=lambda: sys.stdin.isatty())

    def __post_init__(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a", encoding="utf-8")

    def note(self, line: str) -> None:
        print(line, file=self.out, flush=True)
        self._log.write(line + "\n")
        self._log.flush()

    def run(self, cmd: list[str], *, cwd: Path, env: dict[str, str], echo: bool = True) -> tuple[int, str]:
        self._log.write(f"$ {' '.join(cmd)}  (in {cwd})\n")
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                encoding="utf-8", errors="replace")
        lines = []
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = ANSI.sub("", raw.rstrip("\n"))
            lines.append(line)
            self._log.write(line + "\n")
            if echo:
                print(line, file=self.out, flush=True)
        self._log.flush()
        return proc.wait(), "\n".join(lines)

    def ask(self, question: str) -> bool:
        if not self.interactive:
            return False
        answer = input(f"{question} [y/N] ").strip().lower()
        self._log.write(f"{question} -> {answer!r}\n")
        return answer in ("y", "yes")

    def close(self) -> None:
        self._log.close()


def first_error(output: str) -> str:
    for line in output.splitlines():
        if _ERROR.search(line):
            return line.strip(" │╷╵").strip()[:300]
    tail = [line for line in output.splitlines() if line.strip()]
    return tail[-1].strip()[:300] if tail else "no output"


# ---------------------------------------------------------------- the flow


@dataclass
class Deployment:
    env: Environment
    environ: dict[str, str]
    runner: Runner
    auto_approve: bool = False
    repo: Path = REPO_ROOT
    outdir: str = "cdktf.out"

    @property
    def bootstrap(self) -> str:
        return f"{self.env.name}-bootstrap"

    @property
    def platform(self) -> str:
        return f"{self.env.name}-platform"

    def stack_dir(self, stack: str) -> Path:
        return self.repo / self.outdir / "stacks" / stack

    @property
    def local_state(self) -> Path:
        from dataplatform.state import local_state_path

        return self.repo / local_state_path(self.bootstrap)

    def process_env(self, **extra: str) -> dict[str, str]:
        env = {**self.environ, **QUIET_ENV, "DP_ENVIRONMENTS": self.env.name, **extra}
        env.setdefault("CDKTF_OUTDIR", self.outdir)
        return env

    def step(self, name: str, cmd: list[str], *, cwd: Path | None = None, echo: bool = True, **extra: str) -> str:
        self.runner.note(f"{self.env.name}: {name}")
        rc, output = self.runner.run(cmd, cwd=cwd or self.repo, env=self.process_env(**extra), echo=echo)
        if rc != 0:
            raise StepFailed(name, rc, first_error(output))
        return output

    # --- synthesis and cdktn

    def synth(self, backend: str = "gcs") -> None:
        from dataplatform.state import BACKEND_ENV

        env = self.process_env()
        env.pop(BACKEND_ENV, None)
        if backend == "local":
            env[BACKEND_ENV] = "local"
        self.runner.note(f"{self.env.name}: synthesize ({'local' if backend == 'local' else 'GCS'} bootstrap state)")
        rc, output = self.runner.run([sys.executable, "main.py"], cwd=self.repo, env=env)
        if rc != 0:
            raise StepFailed("synthesize", rc, first_error(output))
        shutil.rmtree(self.stack_dir(self.bootstrap) / ".terraform", ignore_errors=True)  # forget the other backend

    def cdktn(self, command: str, stack: str) -> str:
        cmd = ["cdktn", command, stack, "--skip-synth", "--no-color"]
        if command == "deploy":
            cmd.append("--auto-approve")
        return self.step(f"cdktn {command} {stack}", cmd)

    def apply(self, stack: str) -> None:
        if not self.auto_approve:
            self.cdktn("diff", stack)
            if not self.runner.ask(f"apply {stack}?"):
                why = "not confirmed" if self.runner.interactive else "no terminal to confirm on: pass --auto-approve (DEPLOY_FLAGS=--auto-approve)"
                raise StepFailed(f"apply {stack}", 0, why)
        self.cdktn("deploy", stack)

    # --- where the bootstrap state is

    def terraform(self, name: str, *args: str, echo: bool = False) -> tuple[int, str]:
        tf = terraform_binary(self.environ)
        self.runner.note(f"{self.env.name}: {name}")
        return self.runner.run([tf, *args], cwd=self.stack_dir(self.bootstrap), env=self.process_env(), echo=echo)

    def remote_bootstrap_state(self) -> dict | None | str:
        """The bootstrap state in the bucket (dict), None if the bucket holds none, "no-bucket" if it does not exist.
        Expects a GCS-backend synthesis of the bootstrap stack."""
        rc, output = self.terraform("read the bootstrap state in the state bucket", "init", "-input=false", "-no-color", "-reconfigure")
        if rc != 0:
            if re.search(r"bucket doesn'?t exist|notFound|Not Found|404", output):
                return "no-bucket"
            raise StepFailed("read the state bucket", rc, first_error(output))
        rc, output = self.terraform("pull the bootstrap state", "state", "pull")
        if rc != 0:
            raise StepFailed("pull the bootstrap state", rc, first_error(output))
        try:
            state = json.loads(output) if output.strip() else None
        except ValueError:
            raise StepFailed("pull the bootstrap state", 1, "terraform state pull did not print JSON") from None
        return state if state and state.get("resources") else None

    def migrate_local_state(self) -> None:
        """Push the local bootstrap state into the bucket, verify it, delete the local copy."""
        local = json.loads(self.local_state.read_text())
        rc, output = self.terraform("move the bootstrap state into the state bucket", "state", "push", str(self.local_state), echo=True)
        if rc != 0:
            raise StepFailed("push the bootstrap state", rc, first_error(output))
        remote = self.remote_bootstrap_state()
        if not isinstance(remote, dict) or (remote.get("lineage"), remote.get("serial")) != (local.get("lineage"), local.get("serial")):
            raise StepFailed("verify the moved state", 1, f"the bucket does not hold the pushed state; {self.local_state} kept")
        self.forget_local_state()

    def forget_local_state(self) -> None:
        for path in (self.local_state, self.local_state.with_name(self.local_state.name + ".backup")):
            path.unlink(missing_ok=True)
        self.runner.note(f"{self.env.name}: bootstrap state now in gs://{self._bucket()}/{self.env.name}/bootstrap; local copy deleted")

    def _bucket(self) -> str:
        from dataplatform.state import state_bucket_name

        return state_bucket_name(self.env)

    # --- the commands

    def deploy_bootstrap(self) -> None:
        self.synth("gcs")
        remote = self.remote_bootstrap_state()
        if self.local_state.exists():
            local = json.loads(self.local_state.read_text())
            if isinstance(remote, dict):
                if (remote.get("lineage"), remote.get("serial")) == (local.get("lineage"), local.get("serial")):
                    self.forget_local_state()  # an earlier run pushed it but stopped before deleting
                else:
                    raise Refused(f"{self.local_state} and gs://{self._bucket()}/{self.env.name}/bootstrap both hold a bootstrap "
                                  "state and they differ; compare them (terraform state pull), keep the right one, delete the other")
            else:
                self.runner.note(f"{self.env.name}: local bootstrap state found: finishing the first deploy")
                self.first_bootstrap()
                return
        elif remote == "no-bucket":
            self.runner.note(f"{self.env.name}: no state bucket yet: first deploy, bootstrap with local state")
            self.first_bootstrap()
            return
        elif remote is None:
            raise Refused(f"gs://{self._bucket()} exists but holds no {self.env.name}/bootstrap state: if another machine ran the "
                          f"first deploy, its state/{self.bootstrap}.tfstate is the bootstrap state; run make deploy there to move it")
        self.apply(self.bootstrap)

    def first_bootstrap(self) -> None:
        self.synth("local")
        self.apply(self.bootstrap)
        self.synth("gcs")
        self.migrate_local_state()

    def secrets_filled(self) -> bool:
        from dataplatform.tools.gcp_http import Client, Unreachable, access_token
        from dataplatform.tools.preflight import secret_values

        token = access_token(self.environ)
        if token is None:
            self.runner.note(f"{self.env.name}: could not check the hand-filled secrets (no gcloud / GOOGLE_OAUTH_ACCESS_TOKEN); "
                             "the Cloud Build connection fails if its token version is missing")
            return True
        try:
            results = secret_values(self.env, Client(token, user_project=self.env.project_id))
        except Unreachable as exc:
            self.runner.note(f"{self.env.name}: could not check the hand-filled secrets ({exc})")
            return True
        missing = [r for _, r in results if r is not None and r.status == "fail"]
        for result in missing:
            self.runner.note(f"{self.env.name}: fill this secret: {result.detail}")
        return not missing

    def deploy(self, only: str | None) -> int:
        if only != "platform":
            self.deploy_bootstrap()
            if not self.secrets_filled():
                self.runner.note(f"deploy {self.env.name}: waiting for the secret values above; then run make deploy ENV={self.env.name} again")
                return EXIT_WAITING
        if only != "bootstrap":
            if only == "platform":
                self.synth("gcs")
            self.apply(self.platform)
        self.runner.note(f"deploy {self.env.name}: done")
        return EXIT_OK

    def diff(self, only: str | None) -> int:
        self.synth("gcs")
        if only != "platform":
            if self.local_state.exists():
                self.synth("local")
                self.cdktn("diff", self.bootstrap)
                self.synth("gcs")
            elif isinstance(self.remote_bootstrap_state(), dict):
                self.cdktn("diff", self.bootstrap)
            else:
                self.runner.note(f"{self.env.name}: bootstrap not deployed yet (make deploy ENV={self.env.name} creates it)")
        if only != "bootstrap":
            self.cdktn("diff", self.platform)
        return EXIT_OK


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None, runner: Runner | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["diff", "deploy"])
    parser.add_argument("env")
    parser.add_argument("--auto-approve", action="store_true", help="deploy without asking (CI)")
    parser.add_argument("--only", choices=["bootstrap", "platform"],
                        help="one stack (CI runs only platform: the bootstrap is applied by a project owner)")
    args = parser.parse_args(argv)
    environ = dict(os.environ if environ is None else environ)
    try:
        check(args.env, environ)
        env = load_env(args.env)
    except Refused as exc:
        print(f"{args.command} {args.env}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    runner = runner or Runner(REPO_ROOT / "cdktf.out" / "logs" / f"{args.command}-{args.env}-{stamp}.log")
    deployment = Deployment(env, environ, runner, auto_approve=args.auto_approve)
    try:
        return deployment.deploy(args.only) if args.command == "deploy" else deployment.diff(args.only)
    except Refused as exc:
        print(f"{args.command} {args.env}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except StepFailed as exc:
        print(f"{args.command} {args.env}: failed at {exc.step} (exit {exc.returncode}): {exc.error}; "
              f"full output: {runner.log_path}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        runner.close()


if __name__ == "__main__":
    sys.exit(main())
