"""The launcher: a Cloud Function (gen2) that decides every ETL launch.

Landing events reach it through Eventarc, every other run request (Cloud Scheduler, Airflow, the
ETL's follow-ups) through the follow-up Cloud Tasks queue (constructs/followups.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktn_provider_google.cloud_run_v2_service_iam_member import CloudRunV2ServiceIamMember
from cdktn_provider_google.cloudfunctions2_function import Cloudfunctions2Function, Cloudfunctions2FunctionEventTriggerEventFilters
from constructs import Construct

from dataplatform.constructs.assets import upload
from dataplatform.constructs.iam import grant_member, grant_project_roles, service_agent
from dataplatform.constructs.lake_bucket import LakeBucket
from dataplatform.constructs.processing.launcher_package import packaged_launcher_source
from dataplatform.constructs.service_account import WorkloadIdentity

FINALIZED = "google.cloud.storage.object.v1.finalized"


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
        source = upload(self, "source-object", bucket=spec.artifacts.name, path=packaged_launcher_source(),
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
        grant_member(self, CloudRunV2ServiceIamMember, "invoker", "roles/run.invoker", spec.identity.principal, on_owner=True,
                     name=self.function.name, location=spec.region)
        self.name = spec.name
        self.uri: str = self.function.service_config.uri  # the run.app URL the follow-up queue targets
