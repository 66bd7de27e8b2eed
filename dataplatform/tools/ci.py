"""What the GitHub workflows derive from environments/: the matrices, and the approval check.

Run with the synth venv after `make check` (it reads the validated environment files):

    .venv/bin/python -m dataplatform.tools.ci matrix                 # CI_IDENTITIES from the environment
    gh api repos/OWNER/REPO/environments/<env> | .venv/bin/python -m dataplatform.tools.ci require-reviewers <env>

`matrix` writes `environments`, `configured`, `first` and `protected` (JSON lists) to
$GITHUB_OUTPUT (stdout without it). An environment is configured when the repository variable
CI_IDENTITIES has an entry for it; the others are not planned or deployed, with a notice, so
a new repository's first push is green and says what to set up. An environment is protected
when its file promotes deliberately (`cicd.promotion: approval`, required by `sla_tier: high`):
the same decision that makes its ETL builds wait for an approver makes its infrastructure
deploy wait for every `first` one and for its GitHub environment's required reviewers
(`require-reviewers`, which the deploy workflow runs before the deploy).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection

SETUP = "README: Setting up the CI identities"


def protected_environments(envs: list | None = None) -> list[str]:
    """Environments that promote deliberately (cicd.promotion: approval); `envs`: the loaded environments
    (read from environments/ when not given)."""
    from dataplatform.config import Promotion, load_environments

    return [e.name for e in (load_environments() if envs is None else envs) if e.cicd.promotion is Promotion.approval]


def matrix(names: list[str], identities: str, protected: Collection[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(outputs, notices) for the workflows."""
    notices = []
    try:
        configured_map = json.loads(identities) if identities.strip() else {}
    except ValueError:
        configured_map = {}
        notices.append(f"::warning::CI_IDENTITIES is not valid JSON; nothing is planned or deployed ({SETUP})")
    if not isinstance(configured_map, dict):
        configured_map = {}
        notices.append(f"::warning::CI_IDENTITIES must be a JSON object keyed by environment; nothing is planned or deployed ({SETUP})")
    if not identities.strip():
        notices.append(f"::notice::CI_IDENTITIES is not set: no environment is planned or deployed yet ({SETUP})")
    configured = [n for n in names if isinstance(configured_map.get(n), dict)]
    for name in names:
        if name not in configured and identities.strip():
            notices.append(f"::notice::{name}: not in CI_IDENTITIES, so not planned or deployed ({SETUP})")
    for name in sorted(set(configured_map) - set(names)):
        notices.append(f"::warning::CI_IDENTITIES names {name!r}, which has no environments/{name}.yaml")
    outputs = {
        "environments": names,
        "configured": configured,
        "first": [n for n in configured if n not in protected],
        "protected": [n for n in configured if n in protected],
    }
    return outputs, notices


def reviewers_problem(env: str, api_response: str) -> str | None:
    """None when the GitHub environment (the API's JSON) requires at least one reviewer, else why not."""
    try:
        data = json.loads(api_response)
    except ValueError:
        return f"cannot read the GitHub environment {env!r} (no JSON from the API: {api_response.strip()[:200]!r})"
    if not isinstance(data, dict) or data.get("name") != env:
        message = data.get("message") if isinstance(data, dict) else None
        return (f"GitHub environment {env!r} does not exist ({message or 'unexpected answer'}); create it with required "
                "reviewers before deploying (a job that names a missing environment creates it unprotected)")
    rules = [r for r in data.get("protection_rules") or [] if r.get("type") == "required_reviewers" and r.get("reviewers")]
    if not rules:
        return f"GitHub environment {env!r} has no required reviewers: add them (Settings > Environments > {env}) before it deploys"
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["matrix"]:
        from dataplatform.config import load_environments

        envs = load_environments()  # once: every file is read and validated
        outputs, notices = matrix([e.name for e in envs], os.environ.get("CI_IDENTITIES", ""), protected_environments(envs))
        for notice in notices:
            print(notice)
        lines = "".join(f"{k}={json.dumps(v)}\n" for k, v in outputs.items())
        target = os.environ.get("GITHUB_OUTPUT")
        if target:
            with open(target, "a") as out:
                out.write(lines)
        else:
            sys.stdout.write(lines)
        return 0
    if argv[:1] == ["require-reviewers"] and len(argv) == 2:
        env = argv[1]
        if env not in protected_environments():
            print(f"{env}: not a protected environment (cicd.promotion is not approval), no approval required")
            return 0
        problem = reviewers_problem(env, sys.stdin.read())
        if problem:
            print(f"::error::{problem}")
            return 1
        print(f"{env}: required reviewers are set")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
