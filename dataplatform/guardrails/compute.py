"""Compute: hardened private VMs and clusters, and hard caps on everything that scales out.

The caps are a safety net against a typo (max_workers: 1000), not the budget: each
environment sets its own, lower values in config. Raising a cap is a reviewed change here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataplatform.config import MIN_MAINTENANCE_SLOT_HOURS, MIN_MAINTENANCE_WEEKLY_HOURS, maintenance_days_per_week
from dataplatform.guardrails.network import INSTANCES
from dataplatform.guardrails.rule import (ERROR, WARNING, Target, Unverified, as_int, block, blocks, computed, expect, get, is_true,
                                         duration_seconds, pipelines_json, request_body, request_uri, rule)


@dataclass(frozen=True)
class Caps:
    dataflow_max_workers: int = 50
    function_max_instances: int = 20
    dataproc_max_workers: int = 50  # primary + secondary
    composer_max_workers: int = 10


CAPS = Caps()

DEFAULT_COMPUTE_SA = "-compute@developer.gserviceaccount.com"


def is_default_compute_sa(account) -> bool:
    """True for the Compute Engine default service account (<number>-compute@..., Editor on the project)."""
    return str(account).endswith(DEFAULT_COMPUTE_SA)


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
    return f"runs as the default compute service account {email}" if is_default_compute_sa(email) else None


@rule("GR-CMP-006", ERROR, "Dataproc nodes have internal IPs only.",
      "set cluster_config.gce_cluster_config.internal_ip_only = true", "google_dataproc_cluster")
def dataproc_internal_ip(t: Target):
    return expect(get(t.attrs, "cluster_config.gce_cluster_config.internal_ip_only"), is_true,
                  "cluster_config.gce_cluster_config.internal_ip_only is not true")


IDLE_STOP_MIN_S = 600
IDLE_STOP_MAX_S = 14 * 86400


@rule("GR-CMP-007", ERROR, "Dataproc clusters stop when idle; they are never deleted behind Terraform's back.",
      'set cluster_config.lifecycle_config.idle_stop_ttl between "600s" and "1209600s" (10 min - 14 days) and drop '
      "idle_delete_ttl / auto_delete_*: a deleted cluster is recreated by the next apply and its notebooks are gone",
      "google_dataproc_cluster")
def dataproc_idle_stop(t: Target):
    lifecycle = get(t.attrs, "cluster_config.lifecycle_config") or {}
    deleting = [k for k in ("idle_delete_ttl", "auto_delete_time", "auto_delete_ttl") if block(lifecycle).get(k)]
    if deleting:
        return f"cluster_config.lifecycle_config.{deleting[0]} deletes the cluster Terraform manages"
    ttl = block(lifecycle).get("idle_stop_ttl")
    if ttl is None:
        return "no cluster_config.lifecycle_config.idle_stop_ttl (an idle cluster keeps running)"
    if computed(ttl):
        return Unverified(f"idle_stop_ttl is computed ({ttl!r})")
    seconds = duration_seconds(ttl)
    if seconds is None or not IDLE_STOP_MIN_S <= seconds <= IDLE_STOP_MAX_S:
        return f"idle_stop_ttl {ttl!r} is outside Dataproc's range [{IDLE_STOP_MIN_S}s, {IDLE_STOP_MAX_S}s]"
    return None


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
        if "dataflow.googleapis.com" not in request_uri(t):
            return []
        request = request_body(t)
        if isinstance(request, str):  # built at apply time: every field unknown
            return [("launch request", {"maxWorkers": request, "ipConfiguration": request})]
        if request is None:
            return [("launch request", {})]
        return [("launch request", block(block(request.get("launchParameter")).get("environment") or request.get("environment")))]
    configs = pipelines_json(t)
    if not isinstance(configs, dict):  # built at apply time (jsonencode(...)): every field unknown
        return [("PIPELINES_JSON", {"maxWorkers": configs, "ipConfiguration": configs})] if computed(configs) else []
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


# ---------------------------------------------------------------- GPUs and image versions

GPU_DRIVER_SCRIPT = "install_gpu_driver.sh"
_BUILT_IN_GPU_FAMILIES = ("a2-", "a3-", "a4-", "g2-", "g4-")


def _dataproc_groups(attrs: dict) -> list[tuple[str, dict]]:
    return [(name, block(get(attrs, f"cluster_config.{name}"))) for name in
            ("master_config", "worker_config", "preemptible_worker_config")]


def _accelerated_machines(t: Target) -> list[tuple[str, str]]:
    """(where, machine type) of every node group / VM that asks for attached accelerators."""
    if t.type == "google_dataproc_cluster":
        return [(f"cluster_config.{name}", str(g.get("machine_type", ""))) for name, g in _dataproc_groups(t.attrs)
                if blocks(g.get("accelerators"))]
    if blocks(t.attrs.get("guest_accelerator")):
        return [("machine_type", str(t.attrs.get("machine_type", "")))]
    return []


@rule("GR-CMP-014", ERROR, "Attached GPUs go on N1 machine types only (A2/A3/A4/G2/G4 carry built-in GPUs; other families take none).",
      "use an n1-* machine type for the GPU nodes (config analytics.worker_machine_type), or a GPU machine family "
      "without an accelerators block", "google_dataproc_cluster", *INSTANCES)
def gpus_on_n1(t: Target):
    problems = []
    for where, machine in _accelerated_machines(t):
        if computed(machine) or machine.startswith("n1-"):
            continue
        kind = "has built-in GPUs" if machine.startswith(_BUILT_IN_GPU_FAMILIES) else "cannot take attached GPUs"
        problems.append(f"{where} is {machine or 'unset'!r}, which {kind}")
    return "; ".join(problems) or None


@rule("GR-CMP-015", ERROR, "Secure Boot is off where the Dataproc GPU driver init action runs (its unsigned kernel module does not load under Secure Boot).",
      "set gce_cluster_config.shielded_instance_config.enable_secure_boot = false on the GPU cluster (keep vTPM and "
      "integrity monitoring on), or install drivers from a signed custom image", "google_dataproc_cluster")
def gpu_driver_without_secure_boot(t: Target):
    actions = [str(a.get("script", "")) for a in blocks(get(t.attrs, "cluster_config.initialization_action"))]
    if not any(GPU_DRIVER_SCRIPT in a for a in actions):
        return None
    secure_boot = get(t.attrs, "cluster_config.gce_cluster_config.shielded_instance_config.enable_secure_boot")
    return expect(secure_boot, lambda v: not is_true(v), "the GPU driver init action runs with Secure Boot enabled")


# Cluster scheduled stop exists for images created from these versions on (Dataproc docs).
SCHEDULED_STOP_MIN = {(2, 2): 42, (2, 1): 76, (2, 0): 57}


@rule("GR-CMP-016", ERROR, "A Dataproc cluster that stops when idle runs an image with scheduled stop (2.0.57+, 2.1.76+, 2.2.42+, 2.3+).",
      'pin a minor version ("2.2-debian12" resolves to the newest 2.2 image) or a patch at or above the minimum',
      "google_dataproc_cluster")
def scheduled_stop_image(t: Target):
    if not get(t.attrs, "cluster_config.lifecycle_config.idle_stop_ttl"):
        return None
    version = get(t.attrs, "cluster_config.software_config.image_version")
    if version is None or computed(version):
        return None
    numbers = str(version).split("-", 1)[0].split(".")
    if not all(n.isdigit() for n in numbers) or len(numbers) < 2:
        return f"image_version {version!r} is not a Dataproc image version"
    major, minor = int(numbers[0]), int(numbers[1])
    if (major, minor) < (2, 0):
        return f"image_version {version!r} predates cluster scheduled stop"
    if len(numbers) < 3 or (major, minor) not in SCHEDULED_STOP_MIN:
        return None  # a minor pin takes the newest patch; 2.3+ has it from the start
    minimum = SCHEDULED_STOP_MIN[(major, minor)]
    return f"image_version {version!r} is below {major}.{minor}.{minimum}, the first with scheduled stop" if int(numbers[2]) < minimum else None


# ---------------------------------------------------------------- Composer

MIN_MAINTENANCE_WEEKLY_H = MIN_MAINTENANCE_WEEKLY_HOURS
MIN_MAINTENANCE_SLOT_H = MIN_MAINTENANCE_SLOT_HOURS


@rule("GR-CMP-017", ERROR, f"Composer maintenance windows are slots of >= {MIN_MAINTENANCE_SLOT_H} h adding up to >= {MIN_MAINTENANCE_WEEKLY_H} h a week.",
      "lengthen the window (config orchestration.composer.maintenance_hours) or add days to maintenance_recurrence "
      "(FREQ=DAILY or FREQ=WEEKLY;BYDAY=..)", "google_composer_environment")
def composer_maintenance_window(t: Target):
    from datetime import datetime

    window = block(get(t.attrs, "config.maintenance_window"))
    if not window:
        return None  # Composer's default windows
    start, end, recurrence = window.get("start_time"), window.get("end_time"), window.get("recurrence")
    if any(computed(v) for v in (start, end, recurrence)):
        return Unverified("maintenance window is computed")
    try:
        hours = (datetime.fromisoformat(str(end).replace("Z", "+00:00")) -
                 datetime.fromisoformat(str(start).replace("Z", "+00:00"))).total_seconds() / 3600
    except ValueError:
        return f"start_time {start!r} / end_time {end!r} are not RFC 3339 times"
    days = maintenance_days_per_week(str(recurrence or ""))
    if days is None:
        return f"recurrence {recurrence!r} is neither FREQ=DAILY nor FREQ=WEEKLY;BYDAY=<days>"
    if hours < MIN_MAINTENANCE_SLOT_H:
        return f"each window lasts {hours:g} h; Composer needs slots of at least {MIN_MAINTENANCE_SLOT_H} h"
    if hours * days < MIN_MAINTENANCE_WEEKLY_H:
        return f"windows add up to {hours * days:g} h a week ({days} x {hours:g} h); Composer needs {MIN_MAINTENANCE_WEEKLY_H} h"
    return None


RULES = [shielded_vm, os_login, serial_port_off, block_project_ssh_keys, own_service_account, dataproc_internal_ip,
         dataproc_idle_stop, composer_private, function_instance_cap, dataflow_worker_cap, dataflow_private_ips,
         dataproc_worker_cap, composer_worker_cap, gpus_on_n1, gpu_driver_without_secure_boot, scheduled_stop_image,
         composer_maintenance_window]
