"""`make preflight ENV=<env>`: what a Terraform plan cannot see, checked against the real project.

A plan checks the configuration against the provider's schema; it does not know whether billing
is linked, whether an organization policy will refuse a resource, whether the secrets a deploy
reads hold a value, whether the Cloud Build GitHub App was authorised, or whether the region has
the GPU quota the cluster asks for. Each check below reads one Google (or GitHub) API.

    python -m dataplatform.tools.preflight dev              # with credentials: run every check
    python -m dataplatform.tools.preflight dev --offline    # explain what would be checked

Credentials: GOOGLE_OAUTH_ACCESS_TOKEN, else `gcloud auth application-default print-access-token`.
GITHUB_TOKEN (optional) lets the repository-id check read a private repository.

Exit status: 0 every check passed (warnings allowed), 1 at least one check failed (the deploy
would fail or be unsafe), 2 usage or configuration error, 3 nothing verified (offline or no
credentials: the checks were only explained).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from dataplatform.config import ENVIRONMENTS_DIR, ConfigError, Environment, Profile, load_environment
from dataplatform.handfilled import HAND_FILLED_SECRETS, secret_id
from dataplatform.tools.gcp_http import Client, Unreachable, access_token, error_message

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_OFFLINE = 0, 1, 2, 3
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

# Compute quota metric of each accelerator type the analytics cluster may ask for.
GPU_QUOTA_METRICS = {
    "nvidia-tesla-t4": "NVIDIA_T4_GPUS", "nvidia-tesla-v100": "NVIDIA_V100_GPUS", "nvidia-tesla-p100": "NVIDIA_P100_GPUS",
    "nvidia-tesla-p4": "NVIDIA_P4_GPUS", "nvidia-l4": "NVIDIA_L4_GPUS", "nvidia-tesla-a100": "NVIDIA_A100_GPUS",
}


@dataclass(frozen=True)
class Result:
    status: str  # ok | warn | pending | fail
    detail: str


OK, WARN, PENDING, FAIL = "ok", "warn", "pending", "fail"


@dataclass(frozen=True)
class Check:
    id: str
    verifies: str
    why_not_in_plan: str
    run: Callable[[Environment, Client], list[Result]]
    applies: Callable[[Environment], bool] = lambda env: True


# ---------------------------------------------------------------- the checks


def _billing(env: Environment, api: Client) -> list[Result]:
    info = api.get(f"https://cloudbilling.googleapis.com/v1/projects/{env.project_id}/billingInfo")
    if not info.ok:
        return [Result(FAIL, f"cannot read the project's billing ({error_message(info)})")]
    expected = f"billingAccounts/{env.billing_account}"
    if not info.body.get("billingEnabled"):
        return [Result(FAIL, f"billing is not enabled: link {expected} (gcloud billing projects link {env.project_id} "
                             f"--billing-account={env.billing_account})")]
    if info.body.get("billingAccountName") != expected:
        return [Result(FAIL, f"the project bills to {info.body.get('billingAccountName')}, config says {expected}: the budget would "
                             "watch another account")]
    results = [Result(OK, f"billing enabled on {expected}")]
    account = api.get(f"https://cloudbilling.googleapis.com/v1/{expected}")
    if not account.ok:
        results.append(Result(WARN, f"budget currency not verified ({error_message(account)}); it must be the account's currency"))
    elif account.body.get("currencyCode") != env.budget.currency:
        results.append(Result(FAIL, f"budget.currency is {env.budget.currency} but the billing account bills in "
                                    f"{account.body.get('currencyCode')}: the Budget API refuses the budget"))
    else:
        results.append(Result(OK, f"budget currency {env.budget.currency} matches the billing account"))
    return results


def _policy(api: Client, env: Environment, constraint: str) -> dict | None:
    reply = api.post(f"https://cloudresourcemanager.googleapis.com/v1/projects/{env.project_id}:getEffectiveOrgPolicy",
                     {"constraint": f"constraints/{constraint}"})
    return reply.body if reply.ok else None


def _enforced(policy: dict | None) -> bool:
    return bool(policy and (policy.get("booleanPolicy") or {}).get("enforced"))


def _allows(policy: dict | None, value: str) -> bool | None:
    """Whether a list policy admits `value`: True, False, or None when only a value group
    (`in:eu-locations`) could admit it, which needs Google's group definitions to decide."""
    rules = (policy or {}).get("listPolicy") or {}
    if not rules or rules.get("allValues") == "ALLOW":
        return True
    if rules.get("allValues") == "DENY":
        return False

    def plain(v: str) -> str:
        return v.removeprefix("in:").removesuffix("-locations").lower()

    if value.lower() in {plain(v) for v in rules.get("deniedValues", [])}:
        return False
    allowed = rules.get("allowedValues", [])
    if not allowed or value.lower() in {plain(v) for v in allowed}:
        return True
    return None if any(v.startswith("in:") for v in allowed) else False


def _org_policies(env: Environment, api: Client) -> list[Result]:
    results = []
    managed_gpus = env.profile is Profile.managed and env.analytics.gpu_count > 0
    if _enforced(_policy(api, env, "compute.requireShieldedVm")) and managed_gpus:
        results.append(Result(FAIL, "constraints/compute.requireShieldedVm is enforced, but the GPU cluster runs with Secure Boot off "
                                    "(the GPU driver module is unsigned): exempt the project, or set analytics.gpu_count: 0"))
    locations = _policy(api, env, "gcp.resourceLocations")
    wanted = {env.region, env.bigquery_location.lower()} | ({env.storage.dual_region.lower()} if env.storage.dual_region else set())
    verdicts = {loc: _allows(locations, loc) for loc in sorted(wanted)}
    if refused := [loc for loc, v in verdicts.items() if v is False]:
        results.append(Result(FAIL, f"constraints/gcp.resourceLocations does not allow {', '.join(refused)}"))
    if unsure := [loc for loc, v in verdicts.items() if v is None]:
        results.append(Result(WARN, f"constraints/gcp.resourceLocations allows value groups only: check {', '.join(unsure)} by hand"))
    if _allows(_policy(api, env, "iam.workloadIdentityPoolProviders"), GITHUB_ISSUER) is not True:
        results.append(Result(FAIL, f"constraints/iam.workloadIdentityPoolProviders does not allow {GITHUB_ISSUER}: CI cannot authenticate"))
    if ((_policy(api, env, "iam.allowedPolicyMemberDomains") or {}).get("listPolicy") or {}).get("allowedValues"):
        results.append(Result(WARN, "constraints/iam.allowedPolicyMemberDomains restricts members: the operators group "
                                    f"({env.operators_group}) and the GitHub principal sets must be allowed"))
    if not _enforced(_policy(api, env, "iam.automaticIamGrantsForDefaultServiceAccounts")):
        results.append(Result(WARN, "constraints/iam.automaticIamGrantsForDefaultServiceAccounts is not enforced: the Compute Engine "
                                    "default account gets Editor (the platform never uses it; consider enforcing)"))
    return results or [Result(OK, "no organization policy blocks the platform")]


def _secrets(env: Environment, api: Client) -> list[Result]:
    return [missing or Result(OK, f"{sid}: a value is present") for sid, missing in secret_values(env, api)]


def secret_values(env: Environment, api: Client) -> list[tuple[str, Result | None]]:
    """(secret id, None if filled else the problem) for each hand-filled secret."""
    out = []
    for key, spec in HAND_FILLED_SECRETS.items():
        sid = secret_id(env.namer, key)
        base = f"https://secretmanager.googleapis.com/v1/projects/{env.project_id}/secrets/{sid}"
        pinned = env.cicd.oauth_token_secret_version if key == "github-oauth-token" else None
        reply = api.get(f"{base}/versions/{pinned}" if pinned else f"{base}/versions?filter={quote('state:ENABLED')}")
        fill = f"gcloud secrets versions add {sid} --project={env.project_id} --data-file=- ({spec.how_to_fill})"
        if reply.status == 404:
            what = f"version {pinned}" if pinned else "the secret"
            problem = Result(FAIL, f"{sid}: {what} does not exist; run the bootstrap first, then {fill}")
        elif not reply.ok:
            problem = Result(WARN, f"{sid}: not verified ({error_message(reply)})")
        elif pinned and reply.body.get("state") != "ENABLED":
            problem = Result(FAIL, f"{sid}: version {pinned} is {reply.body.get('state')}, not ENABLED")
        elif not pinned and not reply.body.get("versions"):
            problem = Result(FAIL, f"{sid}: no enabled version; {fill}")
        else:
            problem = None
        out.append((sid, problem))
    return out


def _github_ids(env: Environment, api: Client) -> list[Result]:
    token = os.environ.get("GITHUB_TOKEN")
    client = Client(token) if token else api
    reply = client.get(f"https://api.github.com/repos/{env.github.repository}", auth=bool(token))
    if reply.status == 404:
        return [Result(WARN, f"{env.github.repository} not visible (private? set GITHUB_TOKEN): repository_id/owner_id not verified")]
    if not reply.ok:
        return [Result(WARN, f"GitHub answered {error_message(reply)}: ids not verified")]
    repo_id, owner_id = reply.body.get("id"), (reply.body.get("owner") or {}).get("id")
    if (repo_id, owner_id) != (env.github.repository_id, env.github.owner_id):
        return [Result(FAIL, f"{env.github.repository} has id {repo_id} (owner {owner_id}); config pins {env.github.repository_id} "
                             f"(owner {env.github.owner_id}): CI tokens would be refused")]
    return [Result(OK, f"{env.github.repository} is repository {repo_id} of owner {owner_id}")]


def _github_app(env: Environment, api: Client) -> list[Result]:
    name = env.namer.resource("github")
    reply = api.get(f"https://cloudbuild.googleapis.com/v2/projects/{env.project_id}/locations/{env.region}/connections/{name}")
    if reply.status == 404:
        return [Result(PENDING, f"connection {name} does not exist yet: the first platform apply creates it; then authorise the "
                                "Cloud Build GitHub App if its stage is not COMPLETE and re-run preflight")]
    if not reply.ok:
        return [Result(WARN, f"connection {name} not verified ({error_message(reply)})")]
    state = reply.body.get("installationState") or {}
    if state.get("stage") != "COMPLETE":
        return [Result(FAIL, f"connection {name} is {state.get('stage', 'not installed')}: {state.get('message', '')} "
                             f"{state.get('actionUri', '')}".strip())]
    return [Result(OK, f"connection {name}: GitHub App installation {env.cicd.github_app_installation_id} authorised")]


STORAGE_AGENT_DOMAIN = "gs-project-accounts.iam.gserviceaccount.com"


def _storage_agent(env: Environment, api: Client) -> list[Result]:
    """Cloud Storage's agent exists only after first use; this read creates it (documented behaviour of
    projects.serviceAccount.get) and checks the email the platform computes offline."""
    reply = api.get(f"https://storage.googleapis.com/storage/v1/projects/{env.project_id}/serviceAccount")
    if not reply.ok:
        return [Result(WARN, f"Cloud Storage service agent not verified ({error_message(reply)})")]
    expected = f"service-{env.project_number}@{STORAGE_AGENT_DOMAIN}"
    if reply.body.get("email_address") != expected:
        return [Result(FAIL, f"the Cloud Storage agent is {reply.body.get('email_address')}, the platform grants {expected}: "
                             "check project_number in the environment file")]
    return [Result(OK, f"Cloud Storage agent {expected} exists (Eventarc's publisher grant can be made)")]


def _gpu_quota(env: Environment, api: Client) -> list[Result]:
    a = env.analytics
    metric = GPU_QUOTA_METRICS.get(a.gpu_type)
    needed = a.max_primary_workers * a.gpu_count
    if metric is None:
        return [Result(WARN, f"no known quota metric for {a.gpu_type}: check {needed} GPUs of quota by hand")]
    reply = api.get(f"https://compute.googleapis.com/compute/v1/projects/{env.project_id}/regions/{env.region}")
    if not reply.ok:
        return [Result(WARN, f"GPU quota not verified ({error_message(reply)})")]
    quota = next((q for q in reply.body.get("quotas", []) if q.get("metric") == metric), None)
    free = (quota or {}).get("limit", 0) - (quota or {}).get("usage", 0)
    if free < needed:
        return [Result(FAIL, f"{metric} in {env.region}: {free:g} free, the cluster scales to {needed} "
                             f"({a.max_primary_workers} workers x {a.gpu_count}); request quota or lower analytics.max_primary_workers")]
    return [Result(OK, f"{metric} in {env.region}: {free:g} free for up to {needed}")]


CHECKS = [
    Check("billing", "billing is enabled on the project, linked to config's billing_account, in the budget's currency",
          "a plan never calls the Billing API; an unlinked project fails the first apply of every API", _billing),
    Check("org-policies", "no organization policy refuses what the platform creates (Shielded VM for the GPU cluster, resource "
                          "locations, the GitHub OIDC issuer, member domains, default-account grants)",
          "policies are enforced by each API at create time; a plan does not evaluate them", _org_policies),
    Check("secrets", "each hand-filled secret holds a value (the GitHub token in its pinned version)",
          "the values are added by hand outside Terraform; the Cloud Build connection reads its token when it is created",
          _secrets),
    Check("github-ids", "config's github.repository_id / owner_id are the repository's real numeric ids",
          "Workload Identity Federation compares them to the token's claims only when CI runs", _github_ids),
    Check("github-app", "the Cloud Build GitHub App is installed and authorised for the connection",
          "authorising the App is a manual step in GitHub; the connection only reports it once created", _github_app),
    Check("storage-agent", "Cloud Storage's service agent exists and is the account the platform grants pubsub.publisher",
          "the platform names agents from project_number without an API call; the agent appears only after first use",
          _storage_agent),
    Check("gpu-quota", "the region has the GPU quota the analytics cluster scales to",
          "quota is checked when VMs are created, i.e. when the cluster scales, long after the apply",
          _gpu_quota, applies=lambda env: env.profile is Profile.managed and env.analytics.gpu_count > 0),
]


# ---------------------------------------------------------------- running


def explain(env: Environment, out=None) -> None:
    out = out or sys.stdout
    for check in CHECKS:
        if check.applies(env):
            print(f"preflight {env.name}: would check {check.id}: {check.verifies} (a plan cannot: {check.why_not_in_plan})", file=out)


def run(env: Environment, api: Client, out=None) -> int:
    out = out or sys.stdout
    failed = 0
    for check in (c for c in CHECKS if c.applies(env)):
        try:
            results = check.run(env, api)
        except Unreachable as exc:
            results = [Result(WARN, f"no answer: {exc}")]
        for result in results:
            failed += result.status == FAIL
            print(f"preflight {env.name}: [{result.status}] {check.id}: {result.detail}", file=out)
    print(f"preflight {env.name}: {'FAILED: ' + str(failed) + ' problem(s) to fix before deploying' if failed else 'ready to deploy'}",
          file=out)
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("--offline", action="store_true", help="only explain what would be checked")
    args = parser.parse_args(argv)
    environ = dict(os.environ if environ is None else environ)
    try:
        env = load_environment(ENVIRONMENTS_DIR / f"{args.env}.yaml")
    except ConfigError as exc:
        print(f"preflight {args.env}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    token = None if args.offline else access_token(environ)
    if token is None:
        explain(env)
        why = "--offline" if args.offline else "no credentials (gcloud auth application-default login, or GOOGLE_OAUTH_ACCESS_TOKEN)"
        print(f"preflight {env.name}: nothing verified ({why}); exit {EXIT_OFFLINE}")
        return EXIT_OFFLINE
    return run(env, Client(token, user_project=env.project_id))


if __name__ == "__main__":
    sys.exit(main())
