"""The APIs the platform uses, enabled once per project and never disabled by destroy."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.project_service import ProjectService
from constructs import Construct

# Terraform resource type prefix -> the API that serves it. Tests check every resource
# the platform declares maps to an enabled API, so a new component cannot forget one.
API_FOR_RESOURCE_PREFIX: dict[str, str] = {
    "google_storage": "storage.googleapis.com",
    "google_compute": "compute.googleapis.com",
    "google_bigquery": "bigquery.googleapis.com",
    "google_secret_manager": "secretmanager.googleapis.com",
    "google_service_account": "iam.googleapis.com",
    "google_iam_workload_identity": "iam.googleapis.com",
    "google_project_iam": "cloudresourcemanager.googleapis.com",
    "google_project_service": "serviceusage.googleapis.com",
    "google_artifact_registry": "artifactregistry.googleapis.com",
    "google_cloudfunctions2": "cloudfunctions.googleapis.com",
    "google_cloud_run": "run.googleapis.com",
    "google_eventarc": "eventarc.googleapis.com",
    "google_cloud_scheduler": "cloudscheduler.googleapis.com",
    "google_cloud_tasks": "cloudtasks.googleapis.com",
    "google_composer": "composer.googleapis.com",
    "google_dataproc": "dataproc.googleapis.com",
    "google_dataplex": "dataplex.googleapis.com",
    "google_monitoring": "monitoring.googleapis.com",
    "google_logging": "logging.googleapis.com",
    "google_billing_budget": "billingbudgets.googleapis.com",
    "google_billing_account": "cloudbilling.googleapis.com",
    "google_pubsub": "pubsub.googleapis.com",
    "google_cloudbuild": "cloudbuild.googleapis.com",
    "google_cloudbuildv2": "cloudbuild.googleapis.com",
    "google_iap": "iap.googleapis.com",
    "google_workload_identity": "workloadidentity.googleapis.com",  # service agents created on request
    "google_workflows": "workflows.googleapis.com",
    "google_workbench": "notebooks.googleapis.com",
}

# APIs needed at run time though no Terraform resource of theirs exists.
RUNTIME_APIS = (
    "dataflow.googleapis.com",  # ETL jobs launched through the API
    "bigquerystorage.googleapis.com",  # Beam's Storage Write API
    "iamcredentials.googleapis.com",  # short-lived tokens for CI (WIF)
    "sts.googleapis.com",  # token exchange for Workload Identity Federation
    "oslogin.googleapis.com",  # OS Login on the Airflow VM
    "datalineage.googleapis.com",  # lineage for Dataplex Universal Catalog
    "workflowexecutions.googleapis.com",  # Eventarc and Cloud Scheduler start workflow executions
    "aiplatform.googleapis.com",  # Vertex AI pipeline jobs and Model Registry (started by Cloud Scheduler)
)

REQUIRED_APIS: tuple[str, ...] = tuple(sorted(set(API_FOR_RESOURCE_PREFIX.values()) | set(RUNTIME_APIS)))


def api_for(resource_type: str) -> str | None:
    """The API serving a Terraform resource type (longest matching prefix)."""
    matches = [p for p in API_FOR_RESOURCE_PREFIX if resource_type.startswith(p)]
    return API_FOR_RESOURCE_PREFIX[max(matches, key=len)] if matches else None


@dataclass(frozen=True)
class ProjectApisSettings:
    project: str
    services: tuple[str, ...] = REQUIRED_APIS


class ProjectApis(Construct):
    def __init__(self, scope: Construct, id_: str, settings: ProjectApisSettings):
        super().__init__(scope, id_)
        self.services: dict[str, ProjectService] = {
            api: ProjectService(
                self,
                api.split(".")[0],
                project=settings.project,
                service=api,
                disable_on_destroy=False,  # other workloads in the project may rely on it
                disable_dependent_services=False,
            )
            for api in settings.services
        }


def api_dependencies(resource_type: str) -> tuple[str, ...]:
    """APIs a resource of this type waits for on an empty project (its own, and IAM's for grants)."""
    own = api_for(resource_type)
    extra = ("cloudresourcemanager.googleapis.com",) if resource_type.startswith("google_project_iam") else ()
    if resource_type.endswith(("_iam_member", "_iam_binding", "_iam_policy")) and resource_type.startswith("google_service_account"):
        extra += ("iam.googleapis.com",)
    return tuple(a for a in (own, *extra) if a)
