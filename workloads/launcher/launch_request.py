"""The Dataflow ``flexTemplates.launch`` request for one ETL run, and the run-request task, from plain data.

Standard library only at import: the Cloud Function (main.py), the ETL, the Airflow DAGs and the
infrastructure code (Cloud Scheduler bodies) all build their requests here, so it must import
anywhere without the workloads' dependencies. `authorized_session` alone needs google-auth (every
caller that sends a request has it) and imports it when called.

One pipeline has exactly one Dataflow job name, ``etl-<pipeline>`` (``job_name_for``), on every
launch path; Dataflow refuses a second *active* job with a name in a region (409
ALREADY_EXISTS), which is what makes "at most one running job per pipeline" hold.

Everything that wants a run and is not a landing event (the ETL leaving a backlog, Cloud
Scheduler, Airflow, a launch deferred by the launcher) asks for one by creating a Cloud Tasks
task on the follow-up queue (``create_task``); the queue delivers it to the launcher
function as a CloudEvent of type ``RUN_REQUEST_TYPE``. So every launch is decided in one place.

A pipeline config is the value of one entry of ``PIPELINES_JSON``::

    {"parameters": {<ETL parameter>: str, ...},
     "environment": {"maxWorkers": int, "serviceAccountEmail": str, "subnetwork": str,
                     "ipConfiguration": "WORKER_IP_PRIVATE", "tempLocation": "gs://...",
                     "stagingLocation": "gs://..."}}
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import re
from typing import Any, Callable, Mapping

# The ETL's Flex Template parameters (etl/metadata.json); Dataflow rejects unknown ones.
ETL_PARAMETERS = (
    "pipeline", "landing_prefix", "schema", "output_table", "curated_prefix", "quarantine_prefix",
    "checkpoint_uri", "alert_secret", "alert_to", "alert_from",
    "archive_prefix", "max_files_per_run", "max_bytes_per_run", "max_file_attempts", "max_loads_per_day",
    "followup_queue",
)
REQUIRED_PARAMETERS = ETL_PARAMETERS[:7]
# FlexTemplateRuntimeEnvironment fields (Dataflow v1b3); anything else is a typo the API would reject.
ENVIRONMENT_FIELDS = frozenset({
    "numWorkers", "maxWorkers", "zone", "serviceAccountEmail", "tempLocation", "machineType",
    "additionalExperiments", "network", "subnetwork", "additionalUserLabels", "kmsKeyName",
    "ipConfiguration", "workerRegion", "workerZone", "enableStreamingEngine", "flexrsGoal",
    "stagingLocation", "sdkContainerImage", "diskSizeGb", "autoscalingAlgorithm", "dumpHeapOnOom",
    "saveHeapDumpsToGcsPath", "launcherMachineType", "enableLauncherVmSerialPortLogging",
    "streamingMode", "additionalPipelineOptions",
})
PIPELINE_LABEL = "etl-pipeline"
JOB_NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_JOB_NAME_LENGTH = 63
LAUNCH_URL = "https://dataflow.googleapis.com/v1b3/projects/{project}/locations/{region}/flexTemplates:launch"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def pipeline_label(pipeline: str) -> str:
    """Value of the ``etl-pipeline`` job label (alerts filter Dataflow jobs on it)."""
    return _slug(pipeline)[:63] or "pipeline"


def job_name_base(pipeline: str) -> str:
    """``etl-<pipeline>``: the stable part of the pipeline's job names (leaves room for a suffix)."""
    return "etl-" + (_slug(pipeline)[:40].strip("-") or "pipeline")


def job_name_for(pipeline: str) -> str:
    """The one Dataflow job name of a pipeline, on every launch path (a valid name, <= 63 chars).

    Dataflow allows one *active* job per name and region: a second launch answers 409, so a
    pipeline never runs twice at once, whoever launches.
    """
    return job_name_base(pipeline)


def build_launch_request(
    pipeline: str, pipeline_config: Mapping[str, Any], template_spec_uri: str, job_name: str
) -> dict[str, Any]:
    """The ``LaunchFlexTemplateRequest`` body for one run of ``pipeline``.

    Checks what the API would only reject at launch time (missing or unknown parameters,
    non-string values, bad job name, unknown environment fields), so a bad config fails at
    synth/deploy time instead of at 3 a.m.  Adds the ``etl-pipeline`` job label for cost
    attribution unless the environment already sets it.
    """
    if not JOB_NAME_PATTERN.match(job_name) or len(job_name) > MAX_JOB_NAME_LENGTH:
        raise ValueError(f"invalid Dataflow job name {job_name!r}")
    if not template_spec_uri.startswith("gs://"):
        raise ValueError(f"template spec must be a gs:// URI, got {template_spec_uri!r}")
    parameters = dict(pipeline_config.get("parameters") or {})
    parameters.setdefault("pipeline", pipeline)
    if parameters["pipeline"] != pipeline:
        raise ValueError(f"parameters.pipeline is {parameters['pipeline']!r}, expected {pipeline!r}")
    unknown = sorted(set(parameters) - set(ETL_PARAMETERS))
    missing = [name for name in REQUIRED_PARAMETERS if not parameters.get(name)]
    not_strings = sorted(name for name, value in parameters.items() if not isinstance(value, str))
    if unknown or missing or not_strings:
        raise ValueError(
            f"pipeline {pipeline!r}: unknown parameters {unknown}, missing {missing}, not strings {not_strings}"
        )
    environment = copy.deepcopy(dict(pipeline_config.get("environment") or {}))
    unknown_env = sorted(set(environment) - ENVIRONMENT_FIELDS)
    if unknown_env:
        raise ValueError(f"pipeline {pipeline!r}: unknown environment fields {unknown_env}")
    for key in ("maxWorkers", "numWorkers"):
        if key in environment and (isinstance(environment[key], bool) or not isinstance(environment[key], int)):
            raise ValueError(f"pipeline {pipeline!r}: environment.{key} must be an integer")
    labels = dict(environment.get("additionalUserLabels") or {})
    labels.setdefault(PIPELINE_LABEL, pipeline_label(pipeline))
    environment["additionalUserLabels"] = labels
    return {
        "launchParameter": {
            "jobName": job_name,
            "containerSpecGcsPath": template_spec_uri,
            "parameters": parameters,
            "environment": environment,
        }
    }


def launch_url(project: str, region: str) -> str:
    return LAUNCH_URL.format(project=project, region=region)


# --------------------------------------------------------------------- active jobs

ACTIVE_JOBS_URL = "https://dataflow.googleapis.com/v1b3/projects/{project}/jobs:aggregated"


def active_jobs_url(project: str, page_token: str | None = None) -> str:
    """Every active job of the project, all regions (Dataflow's concurrent-job quota is per project)."""
    url = ACTIVE_JOBS_URL.format(project=project) + "?filter=ACTIVE&pageSize=200"
    return url + (f"&pageToken={page_token}" if page_token else "")


def list_jobs(fetch_page: Callable[[str | None], Mapping[str, Any]], max_pages: int) -> list[Mapping[str, Any]]:
    """Every job of a paginated Dataflow listing: ``fetch_page(page_token)`` returns one page (and
    raises, as its caller decides, on an error answer); at most ``max_pages`` pages are read."""
    jobs: list[Mapping[str, Any]] = []
    token = None
    for _ in range(max_pages):
        page = fetch_page(token)
        jobs += page.get("jobs", [])
        token = page.get("nextPageToken")
        if not token:
            break
    return jobs


def active_job_of(jobs: list[Mapping[str, Any]], pipeline: str, region: str) -> Mapping[str, Any] | None:
    """The active job of ``pipeline`` among a listing of active jobs (at most one can exist)."""
    name = job_name_for(pipeline)
    for job in jobs:
        if job.get("name") == name and job.get("location", region) == region:
            return job
    return None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(value: dt.datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with "Z" (as Google APIs write times; the ETL's log events too)."""
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> dt.datetime:
    """RFC 3339 (Dataflow's createTime, Cloud Tasks' ETA in seconds) -> aware datetime."""
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # nanoseconds -> microseconds
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def covers(job: Mapping[str, Any], requested_at: dt.datetime) -> bool:
    """A job created after a request lists the landing folder after it: it does the requested work."""
    return parse_time(str(job.get("createTime", "1970-01-01T00:00:00Z"))) > requested_at


JOBS_URL = "https://dataflow.googleapis.com/v1b3/projects/{project}/locations/{region}/jobs"
TERMINAL_FAILURES = ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_UPDATED", "JOB_STATE_DRAINED")


def jobs_url(project: str, region: str, page_token: str | None = None) -> str:
    url = JOBS_URL.format(project=project, region=region) + "?filter=ALL&pageSize=100"
    return url + (f"&pageToken={page_token}" if page_token else "")


def run_outcome(jobs: list[Mapping[str, Any]], pipeline: str, region: str, since: dt.datetime) -> bool | None:
    """Whether the run requested at ``since`` is over: the first job of the pipeline created after it.

    True: it succeeded; None: none yet, or still running; raises if it failed or was cancelled.
    """
    name = job_name_for(pipeline)
    runs = sorted((j for j in jobs if j.get("name") == name and j.get("location", region) == region and covers(j, since)),
                  key=lambda j: parse_time(str(j["createTime"])))
    if not runs:
        return None
    state = runs[0].get("currentState", "")
    if state == "JOB_STATE_DONE":
        return True
    if state in TERMINAL_FAILURES:
        raise RuntimeError(f"job {runs[0].get('id')} of {pipeline} ended in {state}")
    return None


# --------------------------------------------------------------------- run requests (Cloud Tasks)

# The OAuth scope of every Google API call made with these requests (Dataflow, Cloud Tasks).
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def authorized_session():
    """An HTTP session authorised with Application Default Credentials (the function's, the ETL
    worker's or Airflow's service account), for the Dataflow and Cloud Tasks calls built here."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=SCOPES)
    return AuthorizedSession(credentials)
RUN_REQUEST_TYPE = "dataplatform.etl.v1.runRequested"
RUN_REQUEST_SOURCE = "//dataplatform/etl"
TASKS_API = "https://cloudtasks.googleapis.com/v2"
# The follow-up queue routes every task to the launcher (queue-level uriOverride, enforce mode
# ALWAYS, with the OIDC identity): a task's own URL is replaced, so producers need not know it.
ROUTED_BY_QUEUE = "https://launcher.routed-by-queue.invalid/"
REASONS = ("arrival", "backlog", "schedule", "deferred")
QUEUE_PATTERN = re.compile(r"^projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]+$")


def follow_up_task_id(pipeline: str, after: str) -> str:
    """Task id of "one run of ``pipeline`` after ``after``" (a job id, or a time window).

    Named tasks are de-duplicated by Cloud Tasks (a second create answers ALREADY_EXISTS, for
    about an hour after the task ran), so any number of requests for the same follow-up make
    one task. A hashed prefix, as Cloud Tasks recommends for named tasks.
    """
    digest = hashlib.sha256(f"{pipeline}\0{after}".encode()).hexdigest()[:16]
    return f"{digest}-{_slug(pipeline)[:40] or 'pipeline'}"


def run_request(pipeline: str, reason: str, requested_at: dt.datetime | None = None) -> dict[str, Any]:
    """The body of a run request. Without ``requested_at`` the launcher takes the task's creation time."""
    if reason not in REASONS:
        raise ValueError(f"reason {reason!r} is not one of {REASONS}")
    body: dict[str, Any] = {"pipeline": pipeline, "reason": reason}
    if requested_at is not None:
        body["requested_at"] = requested_at.astimezone(dt.timezone.utc).isoformat()
    return body


def create_task_request(
    queue: str, body: Mapping[str, Any], task_id: str | None = None, schedule_time: dt.datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """(url, JSON body) of the Cloud Tasks ``tasks.create`` call carrying one run request."""
    if not QUEUE_PATTERN.match(queue):
        raise ValueError(f"queue {queue!r} is not projects/<p>/locations/<l>/queues/<q>")
    http_request = {
        "url": ROUTED_BY_QUEUE,
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", **cloud_event_headers(task_id or "run-request")},
        "body": base64.b64encode(json.dumps(dict(body), sort_keys=True).encode()).decode(),
    }
    task: dict[str, Any] = {"httpRequest": http_request}
    if task_id:
        task["name"] = f"{queue}/tasks/{task_id}"
    if schedule_time is not None:
        task["scheduleTime"] = rfc3339(schedule_time)
    return f"{TASKS_API}/{queue}/tasks", {"task": task}


def create_task(
    post: Callable[..., Any], queue: str, body: Mapping[str, Any], task_id: str | None = None,
    schedule_time: dt.datetime | None = None, timeout: float = 30,
) -> bool:
    """Create one run-request task with ``post`` (an authorised session's ``post``: url, json=, timeout=).

    True: created; False: a task of that name exists already (409 ALREADY_EXISTS: the same
    request, de-duplicated by Cloud Tasks). Any other error answer raises RuntimeError.
    """
    url, request = create_task_request(queue, body, task_id, schedule_time)
    response = post(url, json=request, timeout=timeout)
    if response.status_code == 409:
        return False
    if response.status_code >= 400:
        raise RuntimeError(f"Cloud Tasks answered {response.status_code}: {response.text[:500]}")
    return True


def cloud_event_headers(event_id: str) -> dict[str, str]:
    """Binary-mode CloudEvent headers: the launcher function accepts CloudEvents only."""
    return {"ce-specversion": "1.0", "ce-type": RUN_REQUEST_TYPE, "ce-source": RUN_REQUEST_SOURCE, "ce-id": event_id}


def is_landing_object(relative_name: str) -> bool:
    """A data file: ``*.parquet``, no path part starting with '.' or '_' (markers, temp dirs).

    Same rule as the ETL's ``is_landing_file``; a test keeps the two in step.
    """
    if not relative_name or relative_name.endswith("/"):
        return False
    parts = relative_name.split("/")
    if any(not part or part[0] in "._" for part in parts):
        return False
    return parts[-1].lower().endswith(".parquet")


def pipeline_for_object(bucket: str, name: str, pipelines: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The pipeline whose landing folder holds ``gs://bucket/name`` as a data file, else None."""
    uri = f"gs://{bucket}/{name}"
    for pipeline, config in pipelines.items():
        prefix = (config.get("parameters") or {}).get("landing_prefix", "")
        if not prefix.startswith("gs://"):
            continue
        prefix = prefix.rstrip("/") + "/"
        if uri.startswith(prefix) and is_landing_object(uri[len(prefix):]):
            return pipeline
    return None
