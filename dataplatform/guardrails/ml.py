"""Machine learning: Workbench notebooks, the workflows and schedules that run ML jobs, and
BigQuery Data Transfer scheduled queries, as the APIs accept them and least privilege wants them.

Each rule quotes the documented behaviour it guards against.
"""

from __future__ import annotations

import re

from dataplatform.guardrails.compute import is_default_compute_sa
from dataplatform.guardrails.iam import grants
from dataplatform.guardrails.rule import ERROR, Target, Unverified, block, blocks, computed, expect, get, is_true, request_body, request_uri, rule

IDLE_RANGE_S = (600, 86_400)  # Workbench idle shutdown: 10 to 1,440 minutes
MAX_WORKBENCH_VCPUS = 16  # cost cap; raise by review
ALLOWED_NOTEBOOK_MEMBERS = ("group:", "serviceAccount:")


def _gce(t: Target) -> dict:
    return block(t.attrs.get("gce_setup"))


@rule("GR-ML-001", ERROR, "Workbench instances have no public IP (they reach Google APIs through Private Google Access / NAT).",
      "set gce_setup.disable_public_ip = true", "google_workbench_instance")
def workbench_private(t: Target):
    return expect(_gce(t).get("disable_public_ip"), is_true, "gce_setup.disable_public_ip is not true")


@rule("GR-ML-002", ERROR, f"Workbench instances stop when idle, after {IDLE_RANGE_S[0] // 60}-{IDLE_RANGE_S[1] // 60} minutes (Workbench's accepted range).",
      'set gce_setup.metadata "idle-timeout-seconds" to 600-86400 (whole minutes)', "google_workbench_instance")
def workbench_idle_shutdown(t: Target):
    value = block(_gce(t).get("metadata")).get("idle-timeout-seconds")
    if value is None:
        return "no idle-timeout-seconds metadata: the instance would bill until someone stops it"
    if computed(value):
        return None
    seconds = int(value) if str(value).isdigit() else None
    if seconds is None or not IDLE_RANGE_S[0] <= seconds <= IDLE_RANGE_S[1] or seconds % 60:
        return f"idle-timeout-seconds {value!r} is not whole minutes within {IDLE_RANGE_S[0]}-{IDLE_RANGE_S[1]} s"
    return None


@rule("GR-ML-003", ERROR, f"Workbench instances run as their own service account on at most {MAX_WORKBENCH_VCPUS} vCPUs, without GPUs (cost cap).",
      "set gce_setup.service_accounts to the workbench SA; pick a machine type of <= 16 vCPUs, no accelerator_configs",
      "google_workbench_instance")
def workbench_identity_and_size(t: Target):
    gce, problems = _gce(t), []
    emails = [a.get("email") for a in blocks(gce.get("service_accounts"))]
    if not emails or not emails[0]:
        problems.append("no gce_setup.service_accounts: the Compute Engine default SA (Editor) would be used")
    elif is_default_compute_sa(emails[0]):
        problems.append(f"runs as the default compute SA {emails[0]}")
    machine = gce.get("machine_type")
    match = re.fullmatch(r"[a-z0-9]+-[a-z]+-(\d+)", str(machine or ""))
    if not computed(machine) and (match is None or int(match.group(1)) > MAX_WORKBENCH_VCPUS):
        problems.append(f"machine_type {machine!r} is not a predefined type of at most {MAX_WORKBENCH_VCPUS} vCPUs")
    if gce.get("accelerator_configs"):
        problems.append("accelerator_configs set (GPUs are not budgeted for notebooks)")
    return "; ".join(problems) or None


@rule("GR-ML-004", ERROR, "Notebook access is granted to groups (from config) or service accounts, never to single users or domains.",
      "grant the data scientists' group (ml.data_scientists_group), not user:/domain: members", "google_workbench_instance_iam_*")
def workbench_members(t: Target):
    granted = [m for _, ms in grants(t) for m in ms]  # member, members, or the bindings of a literal policy_data
    bad = [m for m in granted if isinstance(m, str) and not computed(m) and not m.startswith(ALLOWED_NOTEBOOK_MEMBERS)]
    return f"members {bad} are not groups or service accounts" if bad else None


@rule("GR-ML-005", ERROR, "Workflows run as their own service account (without one they run as the Compute Engine default SA).",
      "set service_account to the workflow's WorkloadIdentity", "google_workflows_workflow")
def workflow_identity(t: Target):
    account = t.attrs.get("service_account")
    if not account:
        return "service_account is not set"
    return f"runs as the default compute SA {account}" if is_default_compute_sa(account) else None


@rule("GR-ML-006", ERROR, "Scheduled Vertex AI pipeline runs name their service account (unset, Vertex AI runs the pipeline as the Compute Engine default SA).",
      "put serviceAccount (the pipeline's own SA) in the pipelineJobs request body", "google_cloud_scheduler_job")
def vertex_pipeline_identity(t: Target):
    uri, request = request_uri(t), request_body(t)
    if "aiplatform.googleapis.com" not in uri or not uri.endswith("/pipelineJobs"):
        return None
    if isinstance(request, str):  # built at apply time: which account it names is not known yet
        return Unverified(f"the pipelineJobs request body is computed ({request}): its serviceAccount is unknown until apply")
    if request is None:  # absent, or not base64 JSON of an object
        return "the pipelineJobs request body is not readable JSON"
    account = request.get("serviceAccount")
    if not account:
        return "pipelineJobs request without serviceAccount"
    return f"pipeline runs as the default compute SA {account}" if is_default_compute_sa(account) else None


@rule("GR-ML-007", ERROR, "Google API calls from Cloud Scheduler authenticate with an OAuth token of a named service account.",
      "set http_target.oauth_token.service_account_email (OIDC tokens are for Cloud Run/functions, not googleapis.com)",
      "google_cloud_scheduler_job")
def scheduler_oauth(t: Target):
    if ".googleapis.com/" not in request_uri(t):
        return None
    return None if get(t.attrs, "http_target.oauth_token.service_account_email") else "calls a Google API without oauth_token.service_account_email"


@rule("GR-ML-008", ERROR, "Scheduled queries run as a service account (a federated identity, like the CI deployer, can only create transfers that name one).",
      "set service_account_name to the workload's SA", "google_bigquery_data_transfer_config")
def transfer_identity(t: Target):
    return None if t.attrs.get("service_account_name") else "service_account_name is not set"


@rule("GR-ML-009", ERROR, "Scheduled queries do not start on the hour (documented: they may then run twice, e.g. duplicating INSERTs).",
      'schedule off the hour, e.g. "every day 04:25" instead of "every day 04:00"', "google_bigquery_data_transfer_config")
def transfer_off_the_hour(t: Target):
    if t.attrs.get("data_source_id") != "scheduled_query":
        return None
    schedule = str(t.attrs.get("schedule") or "")
    on_hour = re.findall(r"\b\d{1,2}:00\b", schedule)
    return f"schedule {schedule!r} starts on the hour" if on_hour else None


RULES = [workbench_private, workbench_idle_shutdown, workbench_identity_and_size, workbench_members, workflow_identity,
         vertex_pipeline_identity, scheduler_oauth, transfer_identity, transfer_off_the_hour]
