"""`make diff ENV=..` / `make deploy ENV=..`: cdktn for one environment's stacks, in order.

Refuses to run, with one clear line, when the Terraform binary or credentials are
missing, or when the credentials name another project than the environment file: a
deploy of dev's code into prod's project must be impossible by accident.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dataplatform.config import ENVIRONMENTS_DIR, ConfigError, load_environment

ADC = Path.home() / ".config" / "gcloud" / "application_default_credentials.json"


class Refused(Exception):
    pass


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


def check(env_name: str, environ: dict[str, str], environments_dir: Path = ENVIRONMENTS_DIR) -> list[str]:
    """The stacks to run, in order, after every refusal check."""
    try:
        env = load_environment(environments_dir / f"{env_name}.yaml")
    except ConfigError as exc:
        raise Refused(str(exc)) from None
    if not shutil.which("terraform", path=environ.get("PATH")) and not shutil.which("tofu", path=environ.get("PATH")):
        raise Refused("no terraform (or tofu) binary on PATH: cdktn runs Terraform to diff and deploy; install Terraform >= 1.9")
    source, project = credentials_project(environ)
    if project is None:
        raise Refused(f"credentials from {source} name no project: set GOOGLE_CLOUD_PROJECT={env.project_id}")
    if project != env.project_id:
        raise Refused(f"credentials from {source} point at project {project!r}, but environments/{env_name}.yaml deploys "
                      f"to {env.project_id!r}; refusing")
    return [f"{env_name}-bootstrap", f"{env_name}-platform"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["diff", "deploy"])
    parser.add_argument("env")
    parser.add_argument("--auto-approve", action="store_true", help="deploy without the interactive approval (CI)")
    parser.add_argument("--only", choices=["bootstrap", "platform"],
                        help="one stack (CI runs only platform: the bootstrap is an admin's one-off with local state)")
    args = parser.parse_args(argv)
    try:
        stacks = check(args.env, dict(os.environ))
    except Refused as exc:
        print(f"{args.command} {args.env}: {exc}", file=sys.stderr)
        return 2
    for stack in (s for s in stacks if args.only is None or s.endswith(f"-{args.only}")):
        cmd = ["cdktn", args.command, stack]
        if args.command == "deploy" and args.auto_approve:
            cmd.append("--auto-approve")
        print("+", " ".join(cmd), flush=True)
        if subprocess.run(cmd).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
