"""Scheduled launches: a Cloud Scheduler job per scheduled pipeline, asking the launcher for a run."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.cloud_scheduler_job import CloudSchedulerJob
from constructs import Construct

from dataplatform.constructs.events import api_call
from dataplatform.constructs.service_account import WorkloadIdentity
from workloads.launcher.launch_request import create_task_request, run_request


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
                http_target=api_call(uri, request, spec.identity.email),
            )
