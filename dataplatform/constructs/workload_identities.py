"""One service account per workload, with only the project roles that have no resource scope.

Split over the two stacks of an environment:
- bootstrap (`WorkloadIdentities`, applied by a project owner): the accounts, and every grant
  *on* an account: who may act as whom (`act_as_grants`). The CI deployer may attach only the
  accounts it deploys resources with, and holds no role that could change these grants.
- platform (`WorkloadIdentityRefs`, applied by the CI deployer): the accounts by name and their
  project-level roles (each with its reason; the deployer may grant only the roles listed in
  `github_ci.DEPLOYER_GRANTABLE_ROLES`). Everything that *does* have a resource scope (buckets,
  folders, datasets, repositories) is granted on that resource by the platform stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from dataplatform import comments
from dataplatform.config import Environment, Profile
from dataplatform.constructs.iam import Principal, grant_project_roles
from dataplatform.constructs.service_account import WorkloadIdentity, WorkloadIdentityRef, WorkloadIdentitySettings
from dataplatform.naming import Namer

_LOGS = {"roles/logging.logWriter": "write logs (project-scoped API)", "roles/monitoring.metricWriter": "write metrics (project-scoped API)"}
_LOG_WRITER = {"roles/logging.logWriter": "write build logs to Cloud Logging (project-scoped API)"}


@dataclass(frozen=True)
class Workload:
    purpose: str
    project_roles: dict[str, str] = field(default_factory=dict)
    """role -> why no narrower scope exists (granted by the platform stack)."""
    attached_by_deployer: bool = False
    """The CI deployer attaches this account to a resource it creates (needs actAs on it)."""


WORKLOADS: dict[str, Workload] = {
    "uploader": Workload("source system dropping Parquet into its landing folder"),
    "orchestrator": Workload("Airflow: launches and checks ETL runs", {
        **_LOGS,
        "roles/dataflow.developer": "launch and watch Dataflow jobs (jobs have no resource-level IAM)",
        "roles/bigquery.jobUser": "run the row-count check query (jobs are project-scoped)",
    }, attached_by_deployer=True),
    "launcher": Workload("function launching the ETL per arrival", {
        **_LOGS,
        "roles/dataflow.developer": "launch Flex Template jobs (jobs have no resource-level IAM)",
        "roles/eventarc.eventReceiver": "receive Eventarc events (project-scoped role)",
    }, attached_by_deployer=True),
    "etl-worker": Workload("Dataflow worker of the ETL", {
        **_LOGS,
        "roles/dataflow.worker": "run Dataflow work items (project-scoped role)",
        "roles/bigquery.jobUser": "run load/write jobs (jobs are project-scoped)",
    }),
    "dataproc": Workload("Dataproc cluster nodes for analysis", {
        **_LOGS,
        # Required by Dataproc for the cluster's VM service account. Residual risk (README): the role
        # carries project-wide storage.objects.*, so code run on the cluster can touch every bucket.
        "roles/dataproc.worker": "Dataproc requires it on the cluster's VM service account (project-scoped role)",
        "roles/bigquery.jobUser": "query the warehouse from notebooks (jobs are project-scoped)",
    }, attached_by_deployer=True),
    # The ETL image build runs code from the repository: no project-wide builder role, only its
    # repository (push) and the artifacts bucket (template spec), granted on those resources.
    "build": Workload("Cloud Build of the ETL image and Flex Template spec", dict(_LOG_WRITER), attached_by_deployer=True),
    # Builds the launcher function from its source zip (Google's buildpacks, no repository code):
    # reads the zip, pushes to its own image repository (documented custom build SA roles).
    "fn-build": Workload("Cloud Build of the launcher function (buildpacks)", dict(_LOG_WRITER), attached_by_deployer=True),
    "budget-relay": Workload("relays budget notifications into a Monitoring metric (dashboard)", {
        "roles/monitoring.metricWriter": "writes the spend gauge (metrics are project-scoped)",
        "roles/workflows.invoker": "its Eventarc trigger starts the relay workflow (workflows take no resource-level IAM)",
        "roles/eventarc.eventReceiver": "receives the budget topic's events (project-scoped role)",
    }, attached_by_deployer=True),
}

# Accounts only an environment with `ml:` has; the last two only on the managed profile (Vertex AI).
ML_WORKLOADS: dict[str, Workload] = {
    "ml-runner": Workload("runs BigQuery ML training and prediction jobs", {
        "roles/bigquery.jobUser": "runs the ML query jobs (jobs are project-scoped)",
    }, attached_by_deployer=True),
    "ml-trigger": Workload("starts the ML jobs workflow (Eventarc, Cloud Scheduler)", {
        "roles/workflows.invoker": "starts executions of the ML workflow (workflows take no resource-level IAM)",
        "roles/eventarc.eventReceiver": "receives the events of its Eventarc trigger (project-scoped role)",
    }, attached_by_deployer=True),
}
VERTEX_WORKLOADS: dict[str, Workload] = {
    "ml-pipeline": Workload("runs the Vertex AI train-and-predict pipeline", {
        "roles/aiplatform.user": "creates Vertex AI pipeline jobs and Model Registry versions (no resource-level IAM for them)",
        "roles/bigquery.jobUser": "runs the pipeline's query jobs (jobs are project-scoped)",
    }, attached_by_deployer=True),
    "ml-workbench": Workload("Workbench notebooks of the data scientists", {
        "roles/bigquery.jobUser": "notebook queries run as jobs (project-scoped)",
    }, attached_by_deployer=True),
}
ALL_WORKLOADS: dict[str, Workload] = {**WORKLOADS, **ML_WORKLOADS, **VERTEX_WORKLOADS}
"""Every account any environment may have (the deployer's grantable roles are read from these)."""


def workloads_of(env: Environment) -> dict[str, Workload]:
    """The accounts of one environment: every base workload, plus the ML ones its config asks for."""
    found = dict(WORKLOADS)
    if env.ml is not None:
        found.update(ML_WORKLOADS)
        if env.profile is Profile.managed:
            found.update(VERTEX_WORKLOADS)
    return found


@dataclass(frozen=True)
class ActAs:
    """A grant on one workload account: `role` for `principal` on the account `target`."""

    target: str
    role: str
    principal: Principal
    reason: str


def act_as_grants(workloads: dict[str, Workload], *, deployer: Principal, managed: bool, operators: Principal,
                  composer_agent: Principal, data_scientists: Principal | None = None) -> list[ActAs]:
    """Who may act as which workload account (all made by the bootstrap stack)."""
    user = "roles/iam.serviceAccountUser"
    grants = [
        ActAs("etl-worker", user, Principal("launcher", "workload:launcher"), "the launcher starts Dataflow jobs as the ETL worker"),
        ActAs("etl-worker", user, Principal("orchestrator", "workload:orchestrator"), "Airflow starts Dataflow jobs as the ETL worker"),
    ]
    grants += [ActAs(key, user, deployer, "the CI deployer creates resources that run as this account")
               for key, w in workloads.items() if w.attached_by_deployer]
    if "ml-pipeline" in workloads:
        grants.append(ActAs("ml-pipeline", user, Principal("ml-pipeline", "workload:ml-pipeline"),
                            "Cloud Scheduler calls Vertex AI as this account, creating a pipeline job that runs as it"))
    if "ml-workbench" in workloads and data_scientists is not None:
        grants.append(ActAs("ml-workbench", user, data_scientists,
                            "Workbench's service-account access mode: users of the notebook act as its account"))
    if managed:
        grants.append(ActAs("orchestrator", "roles/composer.ServiceAgentV2Ext", composer_agent,
                            "Composer's service agent acts for the environment's account (Composer 2/3 requirement)"))
    else:
        grants.append(ActAs("orchestrator", user, operators,
                            "OS Login to a VM that runs as a service account requires actAs on that account"))
    return grants


@dataclass(frozen=True)
class WorkloadIdentitiesSettings:
    namer: Namer
    workloads: dict[str, Workload]
    grants: list[ActAs]


class WorkloadIdentities(Construct):
    """Bootstrap: one service account per workload and the grants on them."""

    def __init__(self, scope: Construct, id_: str, settings: WorkloadIdentitiesSettings):
        super().__init__(scope, id_)
        self.by_key: dict[str, WorkloadIdentity] = {
            key: WorkloadIdentity(self, key, WorkloadIdentitySettings(settings.namer.service_account(key), w.purpose))
            for key, w in settings.workloads.items()
        }
        for grant in settings.grants:
            principal = grant.principal
            if principal.member.startswith("workload:"):
                principal = self.by_key[principal.member.split(":", 1)[1]].principal
            member = self.by_key[grant.target].bind(grant.role, principal)
            comments.comment(member, "grant_reason", grant.reason)

    def __getitem__(self, key: str) -> WorkloadIdentity:
        return self.by_key[key]


@dataclass(frozen=True)
class WorkloadIdentityRefsSettings:
    namer: Namer
    project: str
    workloads: dict[str, Workload]


class WorkloadIdentityRefs(Construct):
    """Platform: the bootstrap's workload accounts by name, and their project-level roles."""

    def __init__(self, scope: Construct, id_: str, settings: WorkloadIdentityRefsSettings):
        super().__init__(scope, id_)
        self.by_key: dict[str, WorkloadIdentityRef] = {}
        for key, workload in settings.workloads.items():
            ref = workload_ref(settings.namer, settings.project, key)
            grant_project_roles(Construct(self, key), settings.project, ref.principal, workload.project_roles)
            self.by_key[key] = ref

    def __getitem__(self, key: str) -> WorkloadIdentityRef:
        return self.by_key[key]


def workload_ref(namer: Namer, project: str, key: str) -> WorkloadIdentityRef:
    return WorkloadIdentityRef(key, f"{namer.service_account(key)}@{project}.iam.gserviceaccount.com", project)
