"""Where Terraform keeps each stack's state (no jsii: `make deploy` reads it before any synthesis).

Every state lives in the bootstrap's bucket, `<prefix>-<env>-tfstate-<project number>`:
`<env>/bootstrap` and `<env>/platform`. Only the very first bootstrap apply, on a project with no
bucket yet, keeps its state in `state/<env>-bootstrap.tfstate`; `make deploy` then moves it.
"""

from __future__ import annotations

from dataplatform.config import Environment

BACKEND_ENV = "DP_BOOTSTRAP_BACKEND"
"""`local` for the very first apply on an empty project (set by `make deploy`); otherwise GCS."""


def state_bucket_name(env: Environment) -> str:
    return env.namer.bucket("tfstate")


def bootstrap_state_prefix(env: Environment) -> str:
    return f"{env.name}/bootstrap"


def platform_state_prefix(env: Environment) -> str:
    return f"{env.name}/platform"


def local_state_path(stack_id: str) -> str:
    """Where the first apply keeps the bootstrap state, relative to the repository root."""
    return f"state/{stack_id}.tfstate"
