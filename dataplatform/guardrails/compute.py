"""Compute: hardened private VMs and clusters, and hard caps on everything that scales out.

The caps are a safety net against a typo (max_workers: 1000), not the budget: each
environment sets its own, lower values in config. Raising a cap is a reviewed change here.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from dataplatform.guardrails.network import INSTANCES
from dataplatform.guardrails.rule import ERROR, WARNING, Target, Unverified, as_int, block, computed, expect, get, is_true, rule


@dataclass(frozen=True)
class Caps:
    dataflow_max_workers: int = 50
    function_max_instances: int = 20
    dataproc_max_workers: int = 50  # primary + secondary
    composer_max_workers: int = 10


CAPS = Caps()

DEFAULT_COMPUTE_SA = "-compute@developer.gserviceaccount.com"


def _metadata(t: Target) -> dict:
    return block(t.attrs.get("metadata"))


@rule("GR-CMP-001", ERROR, "VMs are Shielded VMs (secure boot, vTPM, integrity monitoring).",
      "set shielded_instance_config { enable_secure_boot = true } (vTPM and integrity monitoring default on)", *INSTANCES)
def shielded_vm(t: Target):
    cfg = block(t.attrs.get("shielded_instance_config"))
    if cfg.get("enable_vtpm") is False or cfg.get("enable_integrity_monitoring") is False:
        return "vTPM or integrity monitoring is switched off"
    return expect(cfg.get("enable_secure_boot"), is_true, "secure boot is not enabled")


@rule("GR-CMP-002", ERROR, "VMs use OS Login (IAM-controlled SSH, no metadata keys).",
      'set metadata = { "enable-oslogin" = "TRUE" }', *INSTANCES)
def os_login(t: Target):
    return expect(_metadata(t).get("enable-oslogin"), is_true, "metadata enable-oslogin is not TRUE")


@rule("GR-CMP-003", ERROR, "VMs keep the serial port console off.",
      'drop metadata "serial-port-enable" or set it to "FALSE"', *INSTANCES)
def serial_port_off(t: Target):
    return "metadata serial-port-enable is TRUE" if is_true(_metadata(t).get("serial-port-enable")) else None


@rule("GR-CMP-004", WARNING, "VMs block project-wide SSH keys.",
      'set metadata "block-project-ssh-keys" = "TRUE"', *INSTANCES)
def block_project_ssh_keys(t: Target):
    return None if is_true(_metadata(t).get("block-project-ssh-keys")) else "block-project-ssh-keys is not TRUE"


_IDENTITY = {
    "google_compute_instance": "service_account.email",
    "google_compute_instance_template": "service_account.email",
    "google_compute_region_instance_template": "service_account.email",
    "google_dataproc_cluster": "cluster_config.gce_cluster_config.service_account",
    "google_composer_environment": "config.node_config.service_account",
    "google_cloudfunctions2_function": "service_config.service_account_email",
    "google_cloudfunctions_function": "service_account_email",
    "google_cloud_run_v2_service": "template.service_account",
}


@rule("GR-CMP-005", ERROR, "Workloads run as their own service account, never the Compute Engine default (Editor).",
      "set the workload's service account (WorkloadIdentities gives one per workload)", *_IDENTITY)
def own_service_account(t: Target):
    email = get(t.attrs, _IDENTITY[t.type])
    if not email:
        return f"{_IDENTITY[t.type]} is not set: the default compute service account would be used"
    return f"runs as the default compute service account {email}" if str(email).endswith(DEFAULT_COMPUTE_SA) else None


@rule("GR-CMP-006", ERROR, "Dataproc nodes have internal IPs only.",
      "set cluster_config.gce_cluster_config.internal_ip_only = true", "google_dataproc_cluster")
def dataproc_internal_ip(t: Target):
    return expect(get(t.attrs, "cluster_config.gce_cluster_config.internal_ip_only"), is_true,
                  "cluster_config.gce_cluster_config.internal_ip_only is not true")


@rule("GR-CMP-007", ERROR, "Dataproc clusters delete themselves when idle.",
      'set cluster_config.lifecycle_config.idle_delete_ttl (e.g. "3600s")', "google_dataproc_cluster")
def dataproc_idle_ttl(t: Target):
    return None if get(t.attrs, "cluster_config.lifecycle_config.idle_delete_ttl") else "no cluster_config.lifecycle_config.idle_delete_ttl"


@rule("GR-CMP-008", ERROR, "Composer environments are private (no public IPs).",
      "Composer 3: set config.enable_private_environment = true; Composer 2: "
      "config.private_environment_config { enable_private_endpoint = true }", "google_composer_environment")
def composer_private(t: Target):
    if is_true(get(t.attrs, "config.enable_private_environment")):
        return None
    if is_true(get(t.attrs, "config.private_environment_config.enable_private_endpoint")):
        return None
    return "neither config.enable_private_environment nor private_environment_config.enable_private_endpoint is true"


def _cap(value, cap: int, what: str) -> str | None:
    if value is None:
        return f"{what} is not set (unbounded)"
    if computed(value):
        return Unverified(f"{what} is computed ({value!r}); cannot check the cap of {cap}")
    n = as_int(value)
    return f"{what} is {value!r}, above the cap of {cap}" if n is None or n > cap else None


@rule("GR-CMP-009", ERROR, f"Functions/Cloud Run scale to at most {CAPS.function_max_instances} instances.",
      "set service_config.max_instance_count (functions) / template.scaling.max_instance_count (Cloud Run) "
      "from config; raise CAPS in dataplatform/guardrails/compute.py only by review",
      "google_cloudfunctions2_function", "google_cloudfunctions_function", "google_cloud_run_v2_service")
def function_instance_cap(t: Target):
    path = {"google_cloudfunctions2_function": "service_config.max_instance_count",
            "google_cloudfunctions_function": "max_instances",
            "google_cloud_run_v2_service": "template.scaling.max_instance_count"}[t.type]
    return _cap(get(t.attrs, path), CAPS.function_max_instances, path)


def _launch_environments(t: Target) -> list[tuple[str, dict]]:
    """(what, runtime environment) of every Dataflow launch this resource performs.

    Jobs declared in Terraform carry the settings themselves; launches through the API are
    found in a Cloud Scheduler job calling dataflow.googleapis.com (its base64 JSON body) and
    in a function's PIPELINES_JSON (the launcher's contract, workloads/launcher).
    """
    if t.type in ("google_dataflow_job", "google_dataflow_flex_template_job"):
        return [("job", {"maxWorkers": t.attrs.get("max_workers"), "ipConfiguration": t.attrs.get("ip_configuration")})]
    if t.type == "google_cloud_scheduler_job":
        target = block(t.attrs.get("http_target"))
        if "dataflow.googleapis.com" not in str(target.get("uri", "")):
            return []
        body = target.get("body", "")
        if computed(body):  # built at apply time: every field unknown
            return [("launch request", {"maxWorkers": body, "ipConfiguration": body})]
        try:
            request = json.loads(base64.b64decode(str(body)))
        except ValueError:
            return [("launch request", {})]
        return [("launch request", block(block(request.get("launchParameter")).get("environment") or request.get("environment")))]
    pipelines = get(t.attrs, "service_config.environment_variables.PIPELINES_JSON")
    if not isinstance(pipelines, str) or computed(pipelines):
        return []
    try:
        configs = json.loads(pipelines)
    except ValueError:
        return []
    return [(f"PIPELINES_JSON[{name}]", block(block(cfg).get("environment"))) for name, cfg in sorted(configs.items())]


_DATAFLOW_LAUNCHERS = ("google_dataflow_job", "google_dataflow_flex_template_job", "google_cloud_scheduler_job",
                       "google_cloudfunctions2_function")


@rule("GR-CMP-010", ERROR, f"Dataflow jobs and launches cap workers at {CAPS.dataflow_max_workers}.",
      "set max_workers (job) / environment.maxWorkers (launch request, PIPELINES_JSON) from the pipeline's max_workers",
      *_DATAFLOW_LAUNCHERS)
def dataflow_worker_cap(t: Target):
    problems = [_cap(env.get("maxWorkers"), CAPS.dataflow_max_workers, f"{what} maxWorkers") for what, env in _launch_environments(t)]
    return _combine(problems)


@rule("GR-CMP-011", ERROR, "Dataflow workers have private IPs only.",
      'set ip_configuration = "WORKER_IP_PRIVATE" (job) / environment.ipConfiguration (launch request, PIPELINES_JSON)',
      *_DATAFLOW_LAUNCHERS)
def dataflow_private_ips(t: Target):
    problems = [expect(env.get("ipConfiguration"), lambda v: v == "WORKER_IP_PRIVATE",
                       f"{what} ipConfiguration is {env.get('ipConfiguration')!r}, not WORKER_IP_PRIVATE")
                for what, env in _launch_environments(t)]
    return _combine(problems)


def _combine(problems: list[str | None]) -> str | None:
    """The messages joined; Unverified only if every problem is (an error must stay an error)."""
    found = [p for p in problems if p]
    if not found:
        return None
    text = "; ".join(found)
    return Unverified(text) if all(isinstance(p, Unverified) for p in found) else text


@rule("GR-CMP-012", ERROR, f"Dataproc scales to at most {CAPS.dataproc_max_workers} workers (primary + secondary).",
      "lower the autoscaling policy's max_instances / the cluster's num_instances in config",
      "google_dataproc_autoscaling_policy", "google_dataproc_cluster")
def dataproc_worker_cap(t: Target):
    if t.type == "google_dataproc_autoscaling_policy":
        primary = get(t.attrs, "worker_config.max_instances")
        if primary is None:
            return "worker_config.max_instances is not set (unbounded)"
        paths = ("worker_config.max_instances", "secondary_worker_config.max_instances")
    else:
        paths = ("cluster_config.worker_config.num_instances", "cluster_config.preemptible_worker_config.num_instances")
    values = [get(t.attrs, p) for p in paths]
    if any(computed(v) for v in values):
        return Unverified(f"worker counts {values} are computed; cannot check the cap of {CAPS.dataproc_max_workers}")
    total = sum(as_int(v) or 0 for v in values)
    return f"up to {total} workers, above the cap of {CAPS.dataproc_max_workers}" if total > CAPS.dataproc_max_workers else None


@rule("GR-CMP-013", ERROR, f"Composer scales to at most {CAPS.composer_max_workers} Airflow workers.",
      "set config.workloads_config.worker.max_count from config", "google_composer_environment")
def composer_worker_cap(t: Target):
    workloads = get(t.attrs, "config.workloads_config")
    if workloads is None:
        return None  # Composer 1 / defaults: sized by environment_size
    return _cap(get(workloads, "worker.max_count"), CAPS.composer_max_workers, "config.workloads_config.worker.max_count")


RULES = [shielded_vm, os_login, serial_port_off, block_project_ssh_keys, own_service_account, dataproc_internal_ip,
         dataproc_idle_ttl, composer_private, function_instance_cap, dataflow_worker_cap, dataflow_private_ips,
         dataproc_worker_cap, composer_worker_cap]
