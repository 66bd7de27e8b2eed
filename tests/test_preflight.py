"""`make preflight`: each check against faked Google/GitHub APIs (urlopen autospecced), the offline
explanation, and the exit codes. Environments come from environments/."""

from __future__ import annotations

import io

import pytest

from dataplatform.config import Profile, load_environments
from dataplatform.constructs.secret import secret_id
from dataplatform.tools import preflight
from dataplatform.tools.gcp_http import Client
from tests.fake_google import FakeApis
from tests.support import environment_names

ENVS = {e.name: e for e in load_environments()}
MANAGED = next(e for e in ENVS.values() if e.profile is Profile.managed and e.analytics.gpu_count)
LEAN = next(e for e in ENVS.values() if e.profile is Profile.lean)
CRM = "https://cloudresourcemanager.googleapis.com/v1/projects/{p}:getEffectiveOrgPolicy"


def healthy(env) -> dict:
    """Every API answering as on a project ready for its first deploy."""
    p = env.project_id
    secrets = f"https://secretmanager.googleapis.com/v1/projects/{p}/secrets"

    def org_policy(body):
        constraint = body["constraint"]
        if constraint == "constraints/iam.automaticIamGrantsForDefaultServiceAccounts":
            return 200, {"constraint": constraint, "booleanPolicy": {"enforced": True}}
        return 200, {"constraint": constraint}

    routes = {
        f"GET https://cloudbilling.googleapis.com/v1/projects/{p}/billingInfo":
            (200, {"billingEnabled": True, "billingAccountName": f"billingAccounts/{env.billing_account}"}),
        f"GET https://cloudbilling.googleapis.com/v1/billingAccounts/{env.billing_account}": (200, {"currencyCode": env.budget.currency}),
        f"POST {CRM.format(p=p)}": org_policy,
        f"GET {secrets}/{secret_id(env.namer, 'mail-api-key')}/versions?filter=state%3AENABLED": (200, {"versions": [{"name": "v1"}]}),
        f"GET {secrets}/{secret_id(env.namer, 'github-oauth-token')}/versions/{env.cicd.oauth_token_secret_version}": (200, {"state": "ENABLED"}),
        f"GET https://api.github.com/repos/{env.github.repository}":
            (200, {"id": env.github.repository_id, "owner": {"id": env.github.owner_id}}),
        f"GET https://cloudbuild.googleapis.com/v2/projects/{p}/locations/{env.region}/connections/{env.namer.resource('github')}":
            (200, {"installationState": {"stage": "COMPLETE"}}),
        f"GET https://storage.googleapis.com/storage/v1/projects/{p}/serviceAccount":
            (200, {"email_address": f"service-{env.project_number}@gs-project-accounts.iam.gserviceaccount.com"}),
        f"GET https://compute.googleapis.com/compute/v1/projects/{p}/regions/{env.region}":
            (200, {"quotas": [{"metric": "NVIDIA_T4_GPUS", "limit": 16, "usage": 0}]}),
    }
    return routes


def run(env, routes) -> tuple[int, list[str], FakeApis]:
    api = FakeApis(routes)
    out = io.StringIO()
    with api.installed() as fake:
        code = preflight.run(env, Client("token", user_project=env.project_id), out=out)
    assert fake.call_count == len(api.calls)
    return code, out.getvalue().splitlines(), api


def lines_of(lines, check_id):
    return [line for line in lines if f"] {check_id}: " in line]


@pytest.mark.parametrize("env", ENVS.values(), ids=list(ENVS))
def test_a_ready_project_passes(env):
    code, lines, api = run(env, healthy(env))
    assert code == preflight.EXIT_OK, lines
    assert lines[-1] == f"preflight {env.name}: ready to deploy"
    assert not [line for line in lines if "[fail]" in line]
    assert all(h.get("Authorization") == "Bearer token" for h, c in zip(api.headers, api.calls) if "googleapis.com" in c)
    gpu = env.profile is Profile.managed and env.analytics.gpu_count > 0
    assert bool(lines_of(lines, "gpu-quota")) is gpu, "GPU quota is checked only where GPUs are used"


def test_unlinked_billing_fails_with_the_command_to_link_it():
    env = LEAN
    routes = {**healthy(env), f"GET https://cloudbilling.googleapis.com/v1/projects/{env.project_id}/billingInfo": (200, {"billingEnabled": False})}
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED
    (line,) = [line for line in lines_of(lines, "billing") if "[fail]" in line]
    assert f"gcloud billing projects link {env.project_id} --billing-account={env.billing_account}" in line


def test_budget_in_another_currency_than_the_account_fails():
    env = LEAN
    routes = {**healthy(env), f"GET https://cloudbilling.googleapis.com/v1/billingAccounts/{env.billing_account}": (200, {"currencyCode": "USD"})}
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED and any("bills in USD" in line for line in lines)


def test_shielded_vm_policy_blocks_the_gpu_cluster():
    env = MANAGED
    routes = healthy(env)
    inner = routes[f"POST {CRM.format(p=env.project_id)}"]
    routes[f"POST {CRM.format(p=env.project_id)}"] = lambda body: (200, {"booleanPolicy": {"enforced": True}}) \
        if body["constraint"] == "constraints/compute.requireShieldedVm" else inner(body)
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED
    assert any("requireShieldedVm is enforced, but the GPU cluster runs with Secure Boot off" in line for line in lines)


def test_shielded_vm_policy_is_fine_without_gpus():
    env = LEAN
    routes = healthy(env)
    inner = routes[f"POST {CRM.format(p=env.project_id)}"]
    routes[f"POST {CRM.format(p=env.project_id)}"] = lambda body: (200, {"booleanPolicy": {"enforced": True}}) \
        if body["constraint"] == "constraints/compute.requireShieldedVm" else inner(body)
    assert run(env, routes)[0] == preflight.EXIT_OK


@pytest.mark.parametrize("policy, verdict", [
    ({"listPolicy": {"allowedValues": ["in:europe-west1-locations", "in:eu-locations"]}}, "ok"),  # the groups named like them
    ({"listPolicy": {"allowedValues": ["in:europe-locations"]}}, "warn"),  # a wider group: checked by hand
    ({"listPolicy": {"allowedValues": ["us-central1"]}}, "fail"),
    ({"listPolicy": {"deniedValues": ["europe-west1"]}}, "fail"),
    ({"listPolicy": {"allValues": "ALLOW"}}, "ok"),
])
def test_resource_location_policy(policy, verdict):
    env = LEAN
    routes = healthy(env)
    inner = routes[f"POST {CRM.format(p=env.project_id)}"]
    routes[f"POST {CRM.format(p=env.project_id)}"] = lambda body: (200, policy) \
        if body["constraint"] == "constraints/gcp.resourceLocations" else inner(body)
    _, lines, _ = run(env, routes)
    found = [line for line in lines_of(lines, "org-policies") if "resourceLocations" in line]
    assert (found[0].split("] ")[0].rsplit("[", 1)[1] if found else "ok") == verdict, lines


def test_github_issuer_refused_by_policy_fails():
    env = LEAN
    routes = healthy(env)
    inner = routes[f"POST {CRM.format(p=env.project_id)}"]
    routes[f"POST {CRM.format(p=env.project_id)}"] = lambda body: (200, {"listPolicy": {"allowedValues": ["https://sts.windows.net/x/"]}}) \
        if body["constraint"] == "constraints/iam.workloadIdentityPoolProviders" else inner(body)
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED and any("CI cannot authenticate" in line for line in lines)


def test_missing_secret_values_fail_with_the_command_to_add_them():
    env = LEAN
    routes = healthy(env)
    base = f"https://secretmanager.googleapis.com/v1/projects/{env.project_id}/secrets"
    routes[f"GET {base}/{secret_id(env.namer, 'mail-api-key')}/versions?filter=state%3AENABLED"] = (200, {})
    del routes[f"GET {base}/{secret_id(env.namer, 'github-oauth-token')}/versions/{env.cicd.oauth_token_secret_version}"]
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED
    failed = [line for line in lines_of(lines, "secrets") if "[fail]" in line]
    assert len(failed) == 2 and all("gcloud secrets versions add" in line for line in failed)
    assert any(f"version {env.cicd.oauth_token_secret_version} does not exist" in line for line in failed)


def test_a_disabled_pinned_token_version_fails():
    env = LEAN
    routes = healthy(env)
    key = [k for k in routes if "github-oauth-token" in k][0]
    routes[key] = (200, {"state": "DISABLED"})
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED and any("is DISABLED, not ENABLED" in line for line in lines)


def test_wrong_repository_ids_fail():
    env = LEAN
    routes = {**healthy(env), f"GET https://api.github.com/repos/{env.github.repository}": (200, {"id": 1, "owner": {"id": 2}})}
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED and any("CI tokens would be refused" in line for line in lines_of(lines, "github-ids"))


def test_a_private_repository_is_a_warning_not_a_failure():
    env = LEAN
    routes = healthy(env)
    del routes[f"GET https://api.github.com/repos/{env.github.repository}"]
    code, lines, api = run(env, routes)
    assert code == preflight.EXIT_OK and "[warn] github-ids" in "\n".join(lines)
    (github_headers,) = [h for h, c in zip(api.headers, api.calls) if "api.github.com" in c]
    assert "Authorization" not in github_headers, "the Google token never goes to GitHub"


@pytest.mark.parametrize("answer, status", [
    ((404, {}), "pending"),  # before the first platform apply
    ((200, {"installationState": {"stage": "PENDING_USER_OAUTH", "actionUri": "https://github.com/apps/x"}}), "fail"),
    ((200, {"installationState": {"stage": "COMPLETE"}}), "ok"),
])
def test_github_app_authorisation(answer, status):
    env = LEAN
    routes = healthy(env)
    key = [k for k in routes if "/connections/" in k][0]
    routes[key] = answer
    code, lines, _ = run(env, routes)
    (line,) = lines_of(lines, "github-app")
    assert f"[{status}]" in line
    assert code == (preflight.EXIT_FAILED if status == "fail" else preflight.EXIT_OK)


def test_a_wrong_project_number_shows_in_the_storage_agent():
    env = LEAN
    routes = {**healthy(env), f"GET https://storage.googleapis.com/storage/v1/projects/{env.project_id}/serviceAccount":
              (200, {"email_address": "service-999@gs-project-accounts.iam.gserviceaccount.com"})}
    code, lines, _ = run(env, routes)
    assert code == preflight.EXIT_FAILED and any("check project_number" in line for line in lines_of(lines, "storage-agent"))


@pytest.mark.parametrize("free, bad", [(None, False), (0, True)])
def test_gpu_quota_covers_the_autoscaling_maximum(free, bad):
    env = MANAGED
    needed = env.analytics.max_primary_workers * env.analytics.gpu_count
    limit = needed if free is None else needed - 1  # exactly enough passes, one short fails
    routes = {**healthy(env), f"GET https://compute.googleapis.com/compute/v1/projects/{env.project_id}/regions/{env.region}":
              (200, {"quotas": [{"metric": "NVIDIA_T4_GPUS", "limit": limit, "usage": 0}]})}
    code, lines, _ = run(env, routes)
    (line,) = lines_of(lines, "gpu-quota")
    assert ("[fail]" in line) is bad and (code == preflight.EXIT_FAILED) is bad


def test_offline_explains_every_check_and_exits_3(capsys):
    env = MANAGED
    assert preflight.main([env.name, "--offline"], environ={}) == preflight.EXIT_OFFLINE
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": would check ")[1].split(":")[0] for line in out[:-1]] == [c.id for c in preflight.CHECKS if c.applies(env)]
    assert all("(a plan cannot: " in line for line in out[:-1])
    assert out[-1] == f"preflight {env.name}: nothing verified (--offline); exit 3"


def test_without_credentials_it_explains_instead_of_failing(capsys, monkeypatch):
    monkeypatch.setattr(preflight, "access_token", lambda environ: None)
    assert preflight.main([LEAN.name], environ={"PATH": "/nonexistent"}) == preflight.EXIT_OFFLINE
    assert "nothing verified (no credentials" in capsys.readouterr().out


def test_unknown_environment_is_a_usage_error(capsys):
    missing = "x" + "".join(environment_names())[:8]  # a name no environment file has
    assert preflight.main([missing], environ={}) == preflight.EXIT_USAGE
    assert f"{missing}.yaml:1: (file): cannot read: No such file or directory" in capsys.readouterr().err


def test_access_token_prefers_the_environment_then_gcloud(tmp_path):
    import subprocess

    from dataplatform.tools.gcp_http import access_token

    assert access_token({"GOOGLE_OAUTH_ACCESS_TOKEN": "abc"}) == "abc"
    assert access_token({"PATH": str(tmp_path)}) is None  # no gcloud
    gcloud = tmp_path / "gcloud"
    gcloud.write_text("#!/bin/sh\necho ya29.token\n")
    gcloud.chmod(0o755)
    assert access_token({"PATH": str(tmp_path)}, run=subprocess.run) == "ya29.token"
