"""Cloud Function (gen2): launch the ETL Flex Template when a Parquet file lands.

Entry point ``launch``, triggered through Eventarc by ``google.cloud.storage.object.v1.finalized``
on the landing bucket.  Configuration comes from environment variables set by Terraform:
``PROJECT_ID``, ``REGION``, ``TEMPLATE_SPEC_URI`` and ``PIPELINES_JSON`` (pipeline name ->
{"parameters": {...}, "environment": {...}}).

One job per landed file is cheap to reason about because the ETL is idempotent: a job loads
every pending file, and files already loaded by a concurrent job are recognised and skipped.

Errors: 429/5xx from Dataflow raise, so Eventarc redelivers the event (when the trigger has
retries on); other 4xx are configuration errors that a retry cannot fix, so they are logged
as ERROR and the event is acknowledged.  Logs are JSON lines on stdout, which Cloud Run turns
into structured entries (``severity``, ``event``, ...).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from typing import Any

import functions_framework
import launch_request  # deployed next to this file; see launch_request.py

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


def log(severity: str, event: str, **fields: Any) -> None:
    print(json.dumps({"severity": severity, "event": event, **fields}), file=sys.stdout, flush=True)


@functools.lru_cache(maxsize=1)
def settings() -> dict[str, Any]:
    """Environment configuration, parsed once per instance; a bad value fails loudly at first use."""
    pipelines = json.loads(os.environ["PIPELINES_JSON"])
    if not isinstance(pipelines, dict):
        raise ValueError("PIPELINES_JSON must be a JSON object of pipeline name -> config")
    return {
        "project": os.environ["PROJECT_ID"],
        "region": os.environ["REGION"],
        "template_spec_uri": os.environ["TEMPLATE_SPEC_URI"],
        "pipelines": pipelines,
    }


@functools.lru_cache(maxsize=1)
def session():
    """An HTTP session authorised with the function's service account (Application Default Credentials)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=SCOPES)
    return AuthorizedSession(credentials)


@functions_framework.cloud_event
def launch(cloud_event) -> None:
    data = cloud_event.data or {}
    bucket, name = data.get("bucket", ""), data.get("name", "")
    config = settings()
    pipeline = launch_request.pipeline_for_object(bucket, name, config["pipelines"])
    if pipeline is None:
        log("DEBUG", "etl_launch_ignored", object=f"gs://{bucket}/{name}")
        return
    job_name = launch_request.job_name_for(pipeline, dt.datetime.now(dt.timezone.utc))
    body = launch_request.build_launch_request(
        pipeline, config["pipelines"][pipeline], config["template_spec_uri"], job_name
    )
    url = launch_request.launch_url(config["project"], config["region"])
    response = session().post(url, json=body, timeout=60)
    context = {"pipeline": pipeline, "job_name": job_name, "object": f"gs://{bucket}/{name}"}
    if response.status_code == 409:
        # An active job with this name exists: it was launched this second and will list this file.
        log("INFO", "etl_launch_already_running", **context)
        return
    if response.status_code == 429 or response.status_code >= 500:
        raise RuntimeError(f"Dataflow launch failed with {response.status_code}: {response.text[:1000]}")
    if response.status_code >= 400:
        log("ERROR", "etl_launch_rejected", status=response.status_code, error=response.text[:2000], **context)
        return
    job = response.json().get("job", {})
    log("INFO", "etl_launched", job_id=job.get("id"), **context)
