"""Cloud Function (gen2): the one place that decides whether and when an ETL job is launched.

Entry point ``launch`` receives CloudEvents of two kinds:

* ``google.cloud.storage.object.v1.finalized`` from Eventarc, one per object landing in the
  landing bucket (routed to the pipeline whose folder holds it; non-data files are ignored);
* ``dataplatform.etl.v1.runRequested`` from the follow-up Cloud Tasks queue: a run asked for by
  the ETL (it left a backlog), by Cloud Scheduler or Airflow (a scheduled run), or by this
  function itself (a launch it deferred).

Decision for a request of pipeline P made at time T (event time, or the task's creation time):

1. List the project's active Dataflow jobs (all regions: the concurrent-job quota is per project).
2. P has an active job J (every launch path uses the one job name ``etl-<P>``, so at most one):
   - J was created after T: J lists the landing folder after the request, it covers it: done.
   - otherwise: an arrival creates the follow-up task "one run of P after J" (a named task:
     every arrival during J de-duplicates into the same one) and is acknowledged; a queued
     request answers 503, so Cloud Tasks retries it later (backoff) until J has ended.
3. No job of P, but the project already runs ``MAX_ACTIVE_JOBS`` jobs: defer (arrival -> a named
   task per pipeline and minute; queued request -> 503).
4. Otherwise launch ``etl-<P>``. 409 ALREADY_EXISTS means another instance launched it a moment
   ago: go back to 1 (it covers this request). 429/5xx: an arrival fails (Eventarc redelivers),
   a queued request answers 503 (Cloud Tasks retries). Other 4xx are configuration errors a
   retry cannot fix: logged as ERROR and acknowledged.

So a burst of N files for one pipeline costs one launch while nothing runs, plus one follow-up
launch after the running job: two launches, whatever N and however many instances run.

Configuration (environment, set by Terraform): ``PROJECT_ID``, ``REGION``, ``TEMPLATE_SPEC_URI``,
``PIPELINES_JSON`` (pipeline -> {"parameters", "environment", "on_arrival"}), ``FOLLOWUP_QUEUE``,
``MAX_ACTIVE_JOBS``. Logs are JSON lines on stdout (Cloud Run turns them into structured entries).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from typing import Any

import flask
import functions_framework
import launch_request  # deployed next to this file; see launch_request.py

FINALIZED = "google.cloud.storage.object.v1.finalized"
MAX_LIST_PAGES = 20
MAX_LAUNCH_ROUNDS = 3


class RetryLater(Exception):
    """The request cannot be served now; a queued request is retried by Cloud Tasks."""


def log(severity: str, event: str, **fields: Any) -> None:
    print(json.dumps({"severity": severity, "event": event, **fields}), file=sys.stdout, flush=True)


@functools.lru_cache(maxsize=1)
def settings() -> dict[str, Any]:
    """Environment configuration, parsed once per instance; a bad value fails loudly at first use."""
    pipelines = json.loads(os.environ["PIPELINES_JSON"])
    if not isinstance(pipelines, dict):
        raise ValueError("PIPELINES_JSON must be a JSON object of pipeline name -> config")
    max_active = int(os.environ["MAX_ACTIVE_JOBS"])
    if max_active < 1:
        raise ValueError("MAX_ACTIVE_JOBS must be at least 1")
    return {
        "project": os.environ["PROJECT_ID"],
        "region": os.environ["REGION"],
        "template_spec_uri": os.environ["TEMPLATE_SPEC_URI"],
        "followup_queue": os.environ["FOLLOWUP_QUEUE"],
        "max_active_jobs": max_active,
        "pipelines": pipelines,
    }


@functools.lru_cache(maxsize=1)
def session():
    """An HTTP session authorised with the function's service account, made once per instance."""
    return launch_request.authorized_session()


@functions_framework.cloud_event
def launch(cloud_event) -> None:
    config = settings()
    if cloud_event["type"] == launch_request.RUN_REQUEST_TYPE:
        body = cloud_event.data or {}
        pipeline = body.get("pipeline")
        if pipeline not in config["pipelines"]:
            log("ERROR", "etl_run_request_rejected", pipeline=pipeline, reason="unknown pipeline")
            return  # acknowledged: retrying an unknown pipeline cannot help
        requested_at = (launch_request.parse_time(body["requested_at"]) if body.get("requested_at")
                        else _task_time())
        try:
            decide(config, pipeline, requested_at, queued=True, context={"reason": body.get("reason")})
        except RetryLater as later:
            log("INFO", "etl_run_request_retry_later", pipeline=pipeline, why=str(later))
            flask.abort(503, str(later))  # Cloud Tasks retries non-2xx with backoff; no stack trace logged
        return
    data = cloud_event.data or {}
    bucket, name = data.get("bucket", ""), data.get("name", "")
    arrivals = {p: c for p, c in config["pipelines"].items() if c.get("on_arrival", True)}
    pipeline = launch_request.pipeline_for_object(bucket, name, arrivals)
    if pipeline is None:
        log("DEBUG", "etl_launch_ignored", object=f"gs://{bucket}/{name}")
        return
    landed_at = launch_request.parse_time(cloud_event["time"]) if cloud_event["time"] else launch_request.utc_now()
    decide(config, pipeline, landed_at, queued=False, context={"object": f"gs://{bucket}/{name}"})


def _task_time() -> dt.datetime:
    """When the queued request was made: Cloud Tasks sends the task's schedule time (creation time
    unless scheduled) as X-CloudTasks-TaskETA, seconds since the epoch."""
    eta = flask.request.headers.get("X-CloudTasks-TaskETA")
    return launch_request.parse_time(eta) if eta else launch_request.utc_now()


def active_jobs(config: dict[str, Any]) -> list[dict[str, Any]]:
    def page(token: str | None) -> dict[str, Any]:
        response = session().get(launch_request.active_jobs_url(config["project"], token), timeout=30)
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"listing jobs answered {response.status_code}")
        if response.status_code >= 400:
            raise RuntimeError(f"listing Dataflow jobs failed with {response.status_code}: {response.text[:500]}")
        return response.json()

    return launch_request.list_jobs(page, MAX_LIST_PAGES)


def request_follow_up(config: dict[str, Any], pipeline: str, after: str, reason: str,
                      schedule_time: dt.datetime | None = None) -> bool:
    """Create the named follow-up task (False if it exists already: the same follow-up)."""
    return launch_request.create_task(session().post, config["followup_queue"], launch_request.run_request(pipeline, reason),
                                      launch_request.follow_up_task_id(pipeline, after), schedule_time)


def decide(config: dict[str, Any], pipeline: str, requested_at: dt.datetime, *, queued: bool, context: dict) -> str:
    """Launch, cover, follow up or defer one request (module docstring); returns what was done."""
    region = config["region"]
    context = {"pipeline": pipeline, "requested_at": requested_at.isoformat(), **context}
    for _ in range(MAX_LAUNCH_ROUNDS):
        jobs = active_jobs(config)
        mine = launch_request.active_job_of(jobs, pipeline, region)
        if mine is not None:
            if launch_request.covers(mine, requested_at):
                log("INFO", "etl_launch_covered", job_id=mine.get("id"), **context)
                return "covered"
            if queued:
                raise RetryLater(f"job {mine.get('id')} of {pipeline} is still active")
            created = request_follow_up(config, pipeline, str(mine.get("id")), "arrival")
            log("INFO", "etl_follow_up_requested" if created else "etl_follow_up_exists", after_job=mine.get("id"), **context)
            return "follow_up"
        if len(jobs) >= config["max_active_jobs"]:
            if queued:
                raise RetryLater(f"{len(jobs)} active jobs, the limit is {config['max_active_jobs']}")
            window = requested_at.strftime("budget-%Y%m%dT%H%M")
            request_follow_up(config, pipeline, window, "deferred")
            log("WARNING", "etl_launch_deferred", active_jobs=len(jobs), **context)
            return "deferred"
        body = launch_request.build_launch_request(
            pipeline, config["pipelines"][pipeline], config["template_spec_uri"], launch_request.job_name_for(pipeline))
        response = session().post(launch_request.launch_url(config["project"], region), json=body, timeout=60)
        if response.status_code == 409:
            continue  # another instance launched it just now: it covers this request (checked above)
        if response.status_code == 429 or response.status_code >= 500:
            if queued:
                raise RetryLater(f"Dataflow answered {response.status_code}")
            raise RuntimeError(f"Dataflow launch failed with {response.status_code}: {response.text[:1000]}")
        if response.status_code >= 400:
            log("ERROR", "etl_launch_rejected", status=response.status_code, error=response.text[:2000], **context)
            return "rejected"
        job = response.json().get("job", {})
        log("INFO", "etl_launched", job_id=job.get("id"), job_name=body["launchParameter"]["jobName"], **context)
        return "launched"
    raise RetryLater(f"{pipeline}: the job name stayed taken while no active job was listed")
