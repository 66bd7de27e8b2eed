"""The Dataflow ``flexTemplates.launch`` request for one ETL run, built from plain data.

Standard library only: the Cloud Function (main.py), the Airflow DAGs and the infrastructure
code (Cloud Scheduler bodies) all build the same request from the same pipeline config, so it
must import anywhere without the workloads' dependencies.

A pipeline config is the value of one entry of ``PIPELINES_JSON``::

    {"parameters": {<ETL parameter>: str, ...},
     "environment": {"maxWorkers": int, "serviceAccountEmail": str, "subnetwork": str,
                     "ipConfiguration": "WORKER_IP_PRIVATE", "tempLocation": "gs://...",
                     "stagingLocation": "gs://..."}}
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any, Mapping

# The ETL's Flex Template parameters (etl/metadata.json); Dataflow rejects unknown ones.
ETL_PARAMETERS = (
    "pipeline", "landing_prefix", "schema", "output_table", "curated_prefix", "quarantine_prefix",
    "checkpoint_uri", "alert_secret", "alert_to", "alert_from",
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


def job_name_for(pipeline: str, now: dt.datetime) -> str:
    """``etl-<pipeline>-<UTC yyyymmdd-hhmmss>``, a valid Dataflow job name of at most 63 chars.

    Second precision makes names unique per launch in practice; Dataflow refuses a second
    *active* job with the same name, which the launcher treats as "already launched".
    A naive ``now`` is taken as UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{job_name_base(pipeline)}-{stamp}"


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
