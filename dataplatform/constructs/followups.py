"""The follow-up queue: the one door for every ETL run that is not a landing event.

A Cloud Tasks queue whose *queue-level routing* sends every task to the launcher function
(uriOverride with enforce mode ALWAYS, an OIDC token of the launcher's identity): producers
(the ETL leaving a backlog, Cloud Scheduler, Airflow, the launcher deferring a launch) only
need `cloudtasks.tasks.create` on this queue, never the function's URL nor `actAs` on an
identity. The launcher answers 503 while the pipeline's job is still active, and the queue
retries with backoff: that retry is the deferred follow-up launch.

Named tasks de-duplicate ("one run after job J"), which is what collapses a burst of arrivals
into one follow-up; Cloud Tasks refuses a name for about an hour after its task ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import Fn
from cdktn_provider_google.cloud_tasks_queue import (
    CloudTasksQueue,
    CloudTasksQueueHttpTarget,
    CloudTasksQueueHttpTargetOidcToken,
    CloudTasksQueueHttpTargetUriOverride,
    CloudTasksQueueHttpTargetUriOverridePathOverride,
    CloudTasksQueueRateLimits,
    CloudTasksQueueRetryConfig,
    CloudTasksQueueStackdriverLoggingConfig,
)
from cdktn_provider_google.cloud_tasks_queue_iam_member import CloudTasksQueueIamMember
from constructs import Construct

from dataplatform.constructs.iam import Principal, ResourceIam
from dataplatform.constructs.service_account import WorkloadIdentity

# A follow-up keeps being retried while the job it follows runs: at most this long (the longest
# allowed run is 24 h, `max_runtime_minutes` <= 1440); the schedule is the safety net beyond.
MAX_RETRY_DURATION = "86400s"
MIN_BACKOFF = "30s"
MAX_BACKOFF = "300s"


def queue_path(project: str, region: str, name: str) -> str:
    """`projects/<p>/locations/<l>/queues/<q>`: built from names, so the launcher's environment and the
    ETL's parameters can hold it before the queue exists (the queue depends on the launcher's URL)."""
    return f"projects/{project}/locations/{region}/queues/{name}"


@dataclass(frozen=True)
class FollowUpQueueProps:
    name: str
    """Queue id (letters, digits, hyphens)."""
    project: str
    region: str
    target_uri: str
    """The launcher's https URL (a token is fine): every task is sent there."""
    invoker: WorkloadIdentity
    """Identity of the OIDC token the queue presents (needs run.invoker on the launcher)."""
    max_concurrent_dispatches: int
    """At most this many tasks in flight (the launcher's instance cap)."""

    def __post_init__(self):
        if self.max_concurrent_dispatches < 1:
            raise ValueError("max_concurrent_dispatches must be at least 1")


class FollowUpQueue(Construct, ResourceIam):
    _iam_member_class = CloudTasksQueueIamMember

    def __init__(self, scope: Construct, id_: str, props: FollowUpQueueProps):
        super().__init__(scope, id_)
        self.queue = CloudTasksQueue(
            self,
            "queue",
            name=props.name,
            location=props.region,
            rate_limits=CloudTasksQueueRateLimits(max_concurrent_dispatches=props.max_concurrent_dispatches,
                                                  max_dispatches_per_second=5),
            retry_config=CloudTasksQueueRetryConfig(max_attempts=-1, max_retry_duration=MAX_RETRY_DURATION,
                                                    min_backoff=MIN_BACKOFF, max_backoff=MAX_BACKOFF, max_doublings=4),
            http_target=CloudTasksQueueHttpTarget(
                http_method="POST",
                uri_override=CloudTasksQueueHttpTargetUriOverride(
                    scheme="HTTPS",
                    host=Fn.replace(props.target_uri, "https://", ""),
                    path_override=CloudTasksQueueHttpTargetUriOverridePathOverride(path="/"),
                    uri_override_enforce_mode="ALWAYS",
                ),
                oidc_token=CloudTasksQueueHttpTargetOidcToken(service_account_email=props.invoker.email,
                                                              audience=props.target_uri),
            ),
            stackdriver_logging_config=CloudTasksQueueStackdriverLoggingConfig(sampling_ratio=1.0),
        )
        self._region = props.region
        self.path = queue_path(props.project, props.region, props.name)

    def _iam_target(self):
        return {"name": self.queue.name, "location": self._region}

    def grant_enqueue(self, principal: Principal) -> None:
        """Create tasks in this queue only (roles/cloudtasks.enqueuer on the queue)."""
        self.bind("roles/cloudtasks.enqueuer", principal)
