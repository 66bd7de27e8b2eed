"""Least privilege, asserted exactly: per environment, (identity, resource) -> roles.

The expected matrix below is the specification, written out by hand from the environment's
config (profile, pipelines, who schedules): a grant that is widened (objectViewer -> objectUser),
added, dropped or swapped between identities fails the test named after that identity, e.g.
`test_grants_of_each_identity[dev-etl-worker]`. Environments come from environments/.
"""

from __future__ import annotations

import copy
import json

import pytest

from dataplatform.config import Environment, Profile, ScheduledBy, load_environments
from dataplatform.guardrails import RULES_BY_ID, Target
from dataplatform.guardrails.engine import check_target
from tests import iam_matrix

ENVIRONMENTS = {e.name: e for e in load_environments()}

LOGS = {"roles/logging.logWriter", "roles/monitoring.metricWriter"}
VIEW, USE, CREATE = "roles/storage.objectViewer", "roles/storage.objectUser", "roles/storage.objectCreator"
ENQUEUE = "roles/cloudtasks.enqueuer"
ACT_AS = "roles/iam.serviceAccountUser"

PLAN_PROJECT_ROLES = {
    "roles/iam.securityReviewer", "roles/compute.networkViewer", "roles/compute.viewer", "roles/bigquery.metadataViewer",
    "roles/secretmanager.viewer", "roles/serviceusage.serviceUsageViewer", "roles/iam.workloadIdentityPoolViewer",
    "roles/iam.serviceAccountViewer", "roles/monitoring.viewer", "roles/logging.viewer", "roles/cloudfunctions.viewer",
    "roles/eventarc.viewer", "roles/cloudscheduler.viewer", "roles/dataproc.viewer", "roles/dataplex.dataScanViewer",
    "roles/run.viewer", "roles/cloudbuild.connectionViewer", "roles/artifactregistry.reader", "roles/cloudbuild.builds.viewer",
    "roles/pubsub.viewer", "roles/cloudtasks.viewer", "roles/workflows.viewer", "roles/notebooks.viewer", "custom:ci_plan_reads",
}
DEPLOY_PROJECT_ROLES = {
    "roles/storage.admin", "roles/compute.networkAdmin", "roles/compute.securityAdmin", "roles/compute.instanceAdmin.v1",
    "roles/iam.serviceAccountViewer", "roles/bigquery.dataOwner", "roles/monitoring.editor", "roles/logging.configWriter",
    "roles/cloudfunctions.developer", "roles/eventarc.admin", "roles/cloudscheduler.admin", "roles/composer.admin",
    "roles/dataproc.editor", "roles/dataplex.dataScanAdmin", "roles/run.admin", "roles/iap.admin",
    "roles/cloudbuild.connectionAdmin", "roles/artifactregistry.admin", "roles/cloudbuild.builds.editor", "roles/pubsub.editor",
    "roles/cloudtasks.admin", "roles/workflows.editor", "roles/notebooks.admin", "custom:ci_deploy_extras",
}


def expected(env: Environment) -> dict[str, dict[str, set[str]]]:
    managed = env.profile is Profile.managed
    m: dict[str, dict[str, set[str]]] = {
        # --- CI (bootstrap)
        "ci-plan": {"project": PLAN_PROJECT_ROLES, "project?terraform-managed-objects": {VIEW},
                    "bucket:state": {VIEW}, "billing-account": {"roles/billing.viewer"}},
        "ci-deployer": {"project": DEPLOY_PROJECT_ROLES, "project?only-platform-roles": {"roles/resourcemanager.projectIamAdmin"},
                        "bucket:state": {USE}, "billing-account": {"roles/billing.costsManager"},
                        **{f"sa:{k}": {ACT_AS} for k in ("orchestrator", "launcher", "dataproc", "build", "fn-build", "budget-relay")}},
        "github-repo": {"sa:ci-plan": {"roles/iam.workloadIdentityUser"}},
        "github-deploy-job": {"sa:ci-deployer": {"roles/iam.workloadIdentityUser"}},
        # --- Google's agents (created by the bootstrap, their usual role re-granted)
        "pubsub-agent": {"project": {"roles/pubsub.serviceAgent"}},
        "eventarc-agent": {"project": {"roles/eventarc.serviceAgent"}},
        "composer-agent": {"project": {"roles/composer.serviceAgent"}},
        "cloudbuild-agent": {"project": {"roles/cloudbuild.serviceAgent"}, "secret:github-oauth-token": {"roles/secretmanager.secretAccessor"}},
        "dataplex-agent": {"project": {"roles/dataplex.serviceAgent"}, "dataset:warehouse": {"roles/bigquery.dataViewer"}},
        # --- workloads
        "uploader": {f"folder:landing/{p.name}": {CREATE} for p in env.pipelines},
        "etl-worker": {
            "project": LOGS | {"roles/dataflow.worker", "roles/bigquery.jobUser"},
            "bucket:landing": {VIEW}, "bucket:curated": {USE}, "bucket:quarantine": {USE}, "bucket:control": {USE},
            "bucket:temp": {USE}, "bucket:artifacts": {VIEW}, "dataset:warehouse": {"roles/bigquery.dataEditor"},
            "repository:images": {"roles/artifactregistry.reader"}, "secret:mail-api-key": {"roles/secretmanager.secretAccessor"},
            # loaded files move out of the pipeline folders into _archive/ (delete there, create-only in _archive)
            **{f"folder:landing/{p.name}": {USE} for p in env.pipelines}, "folder:landing/_archive": {CREATE},
            "queue:followups": {ENQUEUE},  # a run that leaves work asks for the next
        },
        "launcher": {"project": LOGS | {"roles/dataflow.developer", "roles/eventarc.eventReceiver"}, "bucket:artifacts": {VIEW},
                     "sa:etl-worker": {ACT_AS}, "queue:followups": {ENQUEUE}, "run:launcher": {"roles/run.invoker"}},
        "orchestrator": {"project": LOGS | {"roles/dataflow.developer", "roles/bigquery.jobUser"} | ({"roles/composer.worker"} if managed else set()),
                         "bucket:artifacts": {VIEW}, "dataset:warehouse": {"roles/bigquery.dataViewer"}, "sa:etl-worker": {ACT_AS}},
        "dataproc": {"project": LOGS | {"roles/dataproc.worker", "roles/bigquery.jobUser"}, "bucket:curated": {VIEW},
                     "bucket:temp": {USE}, "bucket:notebooks": {USE}, "dataset:warehouse": {"roles/bigquery.dataViewer"}},
        "build": {"project": {"roles/logging.logWriter"}, "bucket:artifacts": {USE}, "repository:images": {"roles/artifactregistry.writer"}},
        "fn-build": {"project": {"roles/logging.logWriter"}, "project?function-images": {"roles/artifactregistry.writer"},
                     "bucket:artifacts": {VIEW}},
    }
    # The dashboard's spend chart: budget notifications relayed into a metric.
    m["budget-relay"] = {"project": {"roles/monitoring.metricWriter", "roles/workflows.invoker", "roles/eventarc.eventReceiver"}}
    if env.ml is not None:  # models: jobs write the ML dataset and read only their source tables
        sources = {f"table:{model.pipeline}": {"roles/bigquery.dataViewer"} for model in env.ml.models}
        ml_data = {"dataset:ml": {"roles/bigquery.dataEditor"}, **sources}
        m["ml-runner"] = {"project": {"roles/bigquery.jobUser"}, **ml_data}
        m["ml-trigger"] = {"project": {"roles/workflows.invoker", "roles/eventarc.eventReceiver"}}
        m["log-sink:ml"] = {"topic:ml": {"roles/pubsub.publisher"}}  # ETL run summaries -> the ML topic
        m["ci-deployer"] |= {"sa:ml-runner": {ACT_AS}, "sa:ml-trigger": {ACT_AS}}
        if managed:  # Vertex AI pipeline and the data scientists' Workbench
            m["ml-pipeline"] = {"project": {"roles/aiplatform.user", "roles/bigquery.jobUser"}, **ml_data,
                                "bucket:temp": {USE}, "bucket:artifacts": {VIEW}, "sa:ml-pipeline": {ACT_AS}}
            m["ml-workbench"] = {"project": {"roles/bigquery.jobUser"}, **ml_data}
            m["data-scientists"] = {"sa:ml-workbench": {ACT_AS}, "workbench:ml": {"roles/notebooks.runner"}}
            m["ci-deployer"] |= {"sa:ml-pipeline": {ACT_AS}, "sa:ml-workbench": {ACT_AS}}
    # The launcher is always deployed: arrivals, schedules and follow-ups all go through it.
    m["storage-agent"] = {"project": {"roles/pubsub.publisher"}}
    if env.orchestration.scheduled_by is ScheduledBy.airflow:
        m["orchestrator"]["queue:followups"] = {ENQUEUE}  # the DAGs request their scheduled runs
    if managed:
        m["composer-agent"]["sa:orchestrator"] = {"roles/composer.ServiceAgentV2Ext"}
        m["operators"] = {"project": {"roles/composer.user"}}
    else:
        m["operators"] = {"instance:airflow": {"roles/iap.tunnelResourceAccessor", "roles/compute.osAdminLogin"},
                          "sa:orchestrator": {ACT_AS}}
    m["operators"]["queue:followups"] = {ENQUEUE}  # on-call asks the launcher for a re-run (the job-failed runbook)
    return m


def actual(stacks: dict, name: str) -> dict:
    return iam_matrix.actual(stacks[f"{name}-bootstrap"], stacks[f"{name}-platform"], env=ENVIRONMENTS[name])


CASES = [(name, who) for name, env in ENVIRONMENTS.items() for who in sorted(expected(env))]


@pytest.mark.parametrize("env_name, who", CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_grants_of_each_identity(stacks, env_name, who):
    assert actual(stacks, env_name).get(who, {}) == expected(ENVIRONMENTS[env_name])[who]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_no_identity_holds_a_grant_the_matrix_does_not_list(stacks, env_name):
    assert sorted(set(actual(stacks, env_name)) - set(expected(ENVIRONMENTS[env_name]))) == []


# ---------------------------------------------------------------- the matrix catches what it must


def _mutated(stacks: dict, name: str, stack_suffix: str, match, change) -> dict:
    """A deep copy of the environment's stacks with one IAM member changed."""
    copies = {k: copy.deepcopy(v) for k, v in stacks.items() if k.startswith(f"{name}-")}
    for items in copies[f"{name}-{stack_suffix}"]["resource"].values():
        for body in items.values():
            if match(body):
                change(body)
                return copies
    raise AssertionError("nothing matched")


def _diff(copies: dict, name: str) -> dict:
    got = actual(copies, name)
    want = expected(ENVIRONMENTS[name])
    return {who: (got.get(who), want.get(who)) for who in set(got) | set(want) if got.get(who) != want.get(who)}


FIRST = next(iter(ENVIRONMENTS))


def test_a_widened_landing_grant_of_the_etl_worker_fails(stacks):
    copies = _mutated(stacks, FIRST, "platform",
                      lambda b: b.get("role") == VIEW and "landing_bucket" in str(b.get("bucket")) and "etl-worker" in str(b.get("member")),
                      lambda b: b.update(role=USE))
    assert list(_diff(copies, FIRST)) == ["etl-worker"]


def test_plan_and_deployer_roles_swapped_on_the_state_bucket_fail(stacks):
    copies = {k: copy.deepcopy(v) for k, v in stacks.items() if k.startswith(f"{FIRST}-")}
    members = [b for b in copies[f"{FIRST}-bootstrap"]["resource"]["google_storage_bucket_iam_member"].values()]
    (plan,) = [b for b in members if "ci-plan" in b["member"]]
    (deployer,) = [b for b in members if "ci-deployer" in b["member"]]
    plan["role"], deployer["role"] = deployer["role"], plan["role"]
    assert sorted(_diff(copies, FIRST)) == ["ci-deployer", "ci-plan"]


def test_an_extra_project_role_fails(stacks):
    copies = _mutated(stacks, FIRST, "platform",
                      lambda b: b.get("role") == "roles/bigquery.jobUser" and "etl-worker" in str(b.get("member")),
                      lambda b: b.update(role="roles/bigquery.admin"))
    assert list(_diff(copies, FIRST)) == ["etl-worker"]


# The guardrails' list of impersonation roles is part of least privilege too: each must stay refused
# project-wide (GR-IAM-004) and on a whole pool (GR-IAM-011). Listed here by hand, on purpose.
@pytest.mark.parametrize("role", ["roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator",
                                  "roles/iam.serviceAccountOpenIdTokenCreator", "roles/iam.workloadIdentityUser"])
def test_impersonation_roles_stay_refused_project_wide(role):
    target = Target("google_project_iam_member", {"project": "p", "role": role, "member": "user:a@acme.example"}, path="s/x")
    findings, _ = check_target(target, [RULES_BY_ID["GR-IAM-004"]])
    assert [f.rule for f in findings] == ["GR-IAM-004"], f"{role} dropped from the impersonation roles"
    pool = Target("google_service_account_iam_member", {"role": role, "member": "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*"}, path="s/y")
    findings, _ = check_target(pool, [RULES_BY_ID["GR-IAM-011"]])
    assert [f.rule for f in findings] == ["GR-IAM-011"], f"{role} dropped from the impersonation roles"


def test_the_deployer_may_grant_every_project_role_the_platform_grants_and_nothing_else(stacks):
    """The projectIamAdmin condition lists exactly the roles the platform stacks grant at project level
    (a new project grant is a reviewed change to DEPLOYER_GRANTABLE_ROLES)."""
    from dataplatform.constructs.github_ci import DEPLOYER_GRANTABLE_ROLES

    granted = {b["role"] for name in ENVIRONMENTS for b in stacks[f"{name}-platform"]["resource"].get("google_project_iam_member", {}).values()}
    assert granted == set(DEPLOYER_GRANTABLE_ROLES)
    for name in ENVIRONMENTS:
        (admin,) = [b for b in stacks[f"{name}-bootstrap"]["resource"]["google_project_iam_member"].values()
                    if b["role"] == "roles/resourcemanager.projectIamAdmin"]
        listed = json.loads(admin["condition"]["expression"].split("hasOnly(", 1)[1].rstrip(")").replace("'", '"'))
        assert listed == sorted(DEPLOYER_GRANTABLE_ROLES)
