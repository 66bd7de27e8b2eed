"""One service account per workload, with only the project roles that have no resource scope.

Everything that *does* have a resource scope (buckets, folders, datasets, secrets, actAs)
is granted on that resource by the stack, through the resource construct's grant methods.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from dataplatform.constructs.iam import Principal, grant_project_roles
from dataplatform.constructs.service_account import WorkloadIdentity, WorkloadIdentitySettings
from dataplatform.naming import Namer

_LOGS = {"roles/logging.logWriter": "write logs (project-scoped API)", "roles/monitoring.metricWriter": "write metrics (project-scoped API)"}

WORKLOADS: dict[str, tuple[str, dict[str, str]]] = {
    "uploader": ("source system dropping Parquet into its landing folder", {}),
    "orchestrator": ("Airflow: launches and checks ETL runs", {
        **_LOGS,
        "roles/dataflow.developer": "launch and watch Dataflow jobs (jobs have no resource-level IAM)",
        "roles/bigquery.jobUser": "run the row-count check query (jobs are project-scoped)",
    }),
    "launcher": ("function launching the ETL per arrival", {
        **_LOGS,
        "roles/dataflow.developer": "launch Flex Template jobs (jobs have no resource-level IAM)",
        "roles/eventarc.eventReceiver": "receive Eventarc events (project-scoped role)",
    }),
    "etl-worker": ("Dataflow worker of the ETL", {
        **_LOGS,
        "roles/dataflow.worker": "run Dataflow work items (project-scoped role)",
        "roles/bigquery.jobUser": "run load/write jobs (jobs are project-scoped)",
    }),
    "dataproc": ("Dataproc cluster nodes for analysis", {
        **_LOGS,
        "roles/dataproc.worker": "run Dataproc agents (project-scoped role)",
        "roles/bigquery.jobUser": "query the warehouse from notebooks (jobs are project-scoped)",
    }),
    "build": ("Cloud Build of the ETL image, template and launcher function", {
        **_LOGS,
        "roles/cloudbuild.builds.builder": "Cloud Build runs the ETL and function builds as this SA (builds are project-scoped)",
    }),
}


@dataclass(frozen=True)
class WorkloadIdentitiesSettings:
    namer: Namer
    project: str
    deployer: Principal
    """The CI deployer gets actAs on each workload SA (and on no other SA)."""


class WorkloadIdentities(Construct):
    def __init__(self, scope: Construct, id_: str, settings: WorkloadIdentitiesSettings):
        super().__init__(scope, id_)
        self.by_key: dict[str, WorkloadIdentity] = {}
        for key, (purpose, project_roles) in WORKLOADS.items():
            identity = WorkloadIdentity(self, key, WorkloadIdentitySettings(settings.namer.service_account(key), purpose))
            grant_project_roles(identity, settings.project, identity.principal, project_roles)
            identity.grant_act_as(settings.deployer)
            self.by_key[key] = identity

    def __getitem__(self, key: str) -> WorkloadIdentity:
        return self.by_key[key]
