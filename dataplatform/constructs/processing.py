"""Processing: the ETL image repository, the launcher function and scheduled launches.

Every launch is decided by the launcher function (workloads/launcher): landing events reach it
through Eventarc, every other run request (Cloud Scheduler, Airflow, the ETL's follow-ups)
through the follow-up Cloud Tasks queue (constructs/followups.py). Only the function's
PIPELINES_JSON holds the launch settings, so no second copy can drift.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cdktn_provider_google.artifact_registry_repository import ArtifactRegistryRepository, ArtifactRegistryRepositoryCleanupPolicies
from cdktn_provider_google.artifact_registry_repository_iam_member import ArtifactRegistryRepositoryIamMember
from cdktn_provider_google.cloud_run_v2_service_iam_member import CloudRunV2ServiceIamMember
from cdktn_provider_google.cloud_scheduler_job import CloudSchedulerJob
from cdktn_provider_google.cloudfunctions2_function import Cloudfunctions2Function, Cloudfunctions2FunctionEventTriggerEventFilters
from constructs import Construct

from dataplatform.config import Pipeline
from dataplatform.constructs.assets import upload
from dataplatform.constructs.iam import Principal, ResourceIam, grant_project_roles, service_agent
from dataplatform.constructs.lake_bucket import LakeBucket
from dataplatform.constructs.service_account import WorkloadIdentity
from workloads.launcher.launch_request import create_task_request, run_request

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER_SOURCE = REPO_ROOT / "workloads" / "launcher"
FINALIZED = "google.cloud.storage.object.v1.finalized"


class ImageRepository(Construct, ResourceIam):
    """Docker repository for the ETL's Flex Template image; old images are cleaned up."""

    _iam_member_class = ArtifactRegistryRepositoryIamMember

    def __init__(self, scope: Construct, id_: str, *, repository_id: str, region: str, project: str):
        super().__init__(scope, id_)
        self.repository = ArtifactRegistryRepository(
            self,
            "repository",
            repository_id=repository_id,
            location=region,
            format="DOCKER",
            description="ETL Flex Template images",
            docker_config={"immutable_tags": False},
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                ArtifactRegistryRepositoryCleanupPolicies(id="keep-recent", action="KEEP", most_recent_versions={"keep_count": 10}),
                ArtifactRegistryRepositoryCleanupPolicies(id="drop-old-untagged", action="DELETE",
                                                          condition={"tag_state": "UNTAGGED", "older_than": "2592000s"}),
            ],
        )
        self.image_base = f"{region}-docker.pkg.dev/{project}/{repository_id}"
        self._region = region

    def _iam_target(self):
        return {"repository": self.repository.name, "location": self._region}

    def grant_push(self, principal: Principal) -> None:
        self.bind("roles/artifactregistry.writer", principal)

    def grant_pull(self, principal: Principal) -> None:
        self.bind("roles/artifactregistry.reader", principal)


def etl_launch_config(pipeline: Pipeline, *, parameters: dict[str, str], environment: dict) -> dict:
    """One pipeline's entry of the launcher's PIPELINES_JSON (the launcher's contract)."""
    return {"parameters": parameters, "environment": {**environment, "maxWorkers": pipeline.max_workers},
            "on_arrival": pipeline.on_arrival}


def _packaged_launcher_source() -> Path:
    """A copy of the launcher with only what the function needs (no tests, no caches),
    so the archive hash, and thus the deployed object, changes only with the code.
    Named by content hash, so repeated synths reuse one directory instead of piling up."""
    files = sorted(p for p in LAUNCHER_SOURCE.iterdir()
                   if p.is_file() and (p.suffix == ".py" or p.name == "requirements.txt") and not p.name.startswith("test_"))
    digest = hashlib.sha256(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in files)).hexdigest()[:16]
    staging = Path(tempfile.gettempdir()) / f"dataplatform-launcher-{digest}"
    if not staging.is_dir():
        partial = Path(tempfile.mkdtemp(prefix="dataplatform-launcher-"))
        for path in files:
            shutil.copy2(path, partial / path.name)
        try:
            partial.rename(staging)  # atomic: a concurrent synth either wins or finds it done
        except OSError:
            shutil.rmtree(partial)
    return staging


@dataclass(frozen=True)
class LauncherSpec:
    name: str
    project: str
    project_number: str
    region: str
    landing: LakeBucket
    artifacts: LakeBucket
    identity: WorkloadIdentity
    build_identity: WorkloadIdentity
    template_spec_uri: str
    pipelines: dict[str, dict]
    max_instances: int
    memory: str
    followup_queue: str
    """projects/<p>/locations/<l>/queues/<q> of the follow-up queue."""
    max_active_jobs: int
    """No launch while the project runs this many Dataflow jobs."""


class Launcher(Construct):
    """Cloud Functions gen2, triggered by every finalized object in the landing bucket."""

    def __init__(self, scope: Construct, id_: str, spec: LauncherSpec):
        super().__init__(scope, id_)
        source = upload(self, "source-object", bucket=spec.artifacts.name, path=_packaged_launcher_source(),
                        object_name=lambda digest: f"functions/launcher-{digest}.zip", archive=True)
        # Eventarc delivers GCS events through Pub/Sub published by the storage service agent;
        # the topic is Google-managed, so this role has no narrower scope.
        grant_project_roles(self, spec.project, service_agent("storage", spec.project_number), {
            "roles/pubsub.publisher": "GCS service agent publishes object events for Eventarc (Google-managed topic)"})
        self.function = Cloudfunctions2Function(
            self,
            "function",
            name=spec.name,
            location=spec.region,
            description="Launches the ETL Flex Template for each Parquet file landing in a pipeline folder",
            build_config={
                "runtime": "python312",
                "entry_point": "launch",
                "source": {"storage_source": {"bucket": spec.artifacts.name, "object": source.name}},
                "service_account": spec.build_identity.resource_id,
            },
            service_config={
                "min_instance_count": 0,
                "max_instance_count": spec.max_instances,
                "available_memory": spec.memory,
                "timeout_seconds": 120,
                "max_instance_request_concurrency": 1,
                "ingress_settings": "ALLOW_INTERNAL_ONLY",
                "all_traffic_on_latest_revision": True,
                "service_account_email": spec.identity.email,
                "environment_variables": {
                    "PROJECT_ID": spec.project,
                    "REGION": spec.region,
                    "TEMPLATE_SPEC_URI": spec.template_spec_uri,
                    "PIPELINES_JSON": json.dumps(spec.pipelines, sort_keys=True),
                    "FOLLOWUP_QUEUE": spec.followup_queue,
                    "MAX_ACTIVE_JOBS": str(spec.max_active_jobs),
                },
            },
            event_trigger={
                "event_type": FINALIZED,
                "trigger_region": spec.landing.settings.location.lower(),  # Eventarc sits where the bucket is
                "retry_policy": "RETRY_POLICY_RETRY",
                "service_account_email": spec.identity.email,
                "event_filters": [Cloudfunctions2FunctionEventTriggerEventFilters(attribute="bucket", value=spec.landing.name)],
            },
        )
        # Eventarc invokes the function's Cloud Run service as the launcher SA: this service only.
        CloudRunV2ServiceIamMember(self, "invoker", name=self.function.name, location=spec.region,
                                   role="roles/run.invoker", member=spec.identity.principal.member)
        self.name = spec.name
        self.uri: str = self.function.service_config.uri  # the run.app URL the follow-up queue targets


@dataclass(frozen=True)
class ScheduledLaunchSpec:
    project: str
    region: str
    job_names: dict[str, str]  # pipeline -> Scheduler job name
    identity: WorkloadIdentity
    followup_queue: str
    """projects/<p>/locations/<l>/queues/<q>: scheduled runs are requested there."""
    schedules: dict[str, str]


class ScheduledLaunches(Construct):
    """A Cloud Scheduler job per scheduled pipeline, asking the launcher for a run.

    Each tick creates a run-request task on the follow-up queue (Cloud Tasks API, as the
    launcher identity); the launcher launches `etl-<pipeline>` unless a job of the pipeline
    created after the tick already runs, and retries while an older one runs. A slow run is
    therefore never overlapped, and a tick is never lost while one runs.
    """

    def __init__(self, scope: Construct, id_: str, spec: ScheduledLaunchSpec):
        super().__init__(scope, id_)
        self.jobs = {}
        for pipeline, cron in spec.schedules.items():
            uri, request = create_task_request(spec.followup_queue, run_request(pipeline, "schedule"))
            self.jobs[pipeline] = CloudSchedulerJob(
                self,
                pipeline,
                name=spec.job_names[pipeline],
                region=spec.region,
                schedule=cron,
                time_zone="Etc/UTC",
                description=f"Scheduled ETL run of pipeline {pipeline}",
                attempt_deadline="60s",
                retry_config={"retry_count": 2, "min_backoff_duration": "30s"},
                http_target={
                    "uri": uri,
                    "http_method": "POST",
                    "headers": {"Content-Type": "application/json"},
                    "body": base64.b64encode(json.dumps(request, sort_keys=True).encode()).decode(),
                    "oauth_token": {"service_account_email": spec.identity.email,
                                    "scope": "https://www.googleapis.com/auth/cloud-platform"},
                },
            )
