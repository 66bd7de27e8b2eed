"""Dataproc for Spark + Jupyter: internal IPs only, stopped (never deleted) when idle, pinned image.

Why idle *stop*: an idle-delete TTL deletes a cluster Terraform manages, so the next apply
creates it again (GPUs, init actions, 10+ minutes) and the notebooks on it are gone. A stopped
cluster keeps its disks and configuration, costs only its disks, and Terraform still finds it.
Notebooks are saved to the analytics bucket (versioned, kept on destroy), not to the cluster.
A stopped cluster cannot be updated: start it before an apply that changes it (README runbook).

lean: one node with Jupyter behind the component gateway. managed: an autoscaling policy over
primary workers and spot secondary workers; GPUs on the primary workers, which must be N1
machines (A2/A3/G2 carry built-in GPUs); the GPU driver init action builds a kernel module that
does not load under Secure Boot, so Secure Boot is off on a GPU cluster (vTPM and integrity
monitoring stay on).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import TerraformResourceLifecycle
from cdktn_provider_google.dataproc_autoscaling_policy import DataprocAutoscalingPolicy
from cdktn_provider_google.dataproc_cluster import (
    DataprocCluster,
    DataprocClusterClusterConfigInitializationAction,
    DataprocClusterClusterConfigWorkerConfigAccelerators,
)
from constructs import Construct

from dataplatform.config import DataprocSettings
from dataplatform.constructs.service_account import WorkloadIdentityRef

GPU_DRIVER_ACTION = "gs://goog-dataproc-initialization-actions-{region}/gpu/install_gpu_driver.sh"
NOTEBOOK_DIR_PROPERTY = "dataproc:jupyter.notebook.gcs.dir"
# The autoscaler owns the worker counts; Terraform must not resize the cluster back on every apply.
AUTOSCALED_ATTRIBUTES = ["cluster_config[0].worker_config[0].num_instances",
                         "cluster_config[0].preemptible_worker_config[0].num_instances"]


@dataclass(frozen=True)
class AnalyticsClusterSpec:
    name: str
    autoscaling_policy_id: str
    region: str
    subnet_self_link: str
    identity: WorkloadIdentityRef
    staging_bucket: str
    """Persistent bucket: cluster metadata, job dependencies and (under notebooks/) the notebooks."""
    temp_bucket: str
    """Scratch bucket (objects expire): Spark/YARN temporary files."""
    notebooks_url: str
    autoscaling: bool
    settings: DataprocSettings


class AnalyticsCluster(Construct):
    def __init__(self, scope: Construct, id_: str, spec: AnalyticsClusterSpec):
        super().__init__(scope, id_)
        s = spec.settings
        disk = {"boot_disk_type": "pd-balanced", "boot_disk_size_gb": 100}
        gpus = spec.autoscaling and s.gpu_count > 0
        properties = {NOTEBOOK_DIR_PROPERTY: spec.notebooks_url}
        cluster_config: dict = {
            "staging_bucket": spec.staging_bucket,
            "temp_bucket": spec.temp_bucket,
            "gce_cluster_config": {
                "subnetwork": spec.subnet_self_link,
                "internal_ip_only": True,
                "service_account": spec.identity.email,
                "service_account_scopes": ["cloud-platform"],
                # Secure Boot refuses the unsigned NVIDIA module the GPU driver init action builds.
                "shielded_instance_config": {"enable_secure_boot": not gpus, "enable_vtpm": True, "enable_integrity_monitoring": True},
                "metadata": {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE"},
            },
            "software_config": {"image_version": s.image_version, "optional_components": ["JUPYTER"], "override_properties": properties},
            "endpoint_config": {"enable_http_port_access": True},  # component gateway (IAM-authenticated)
            "lifecycle_config": {"idle_stop_ttl": f"{s.idle_stop_minutes * 60}s"},
            "master_config": {"num_instances": 1, "machine_type": s.machine_type, "disk_config": disk},
        }
        self.autoscaling_policy = None
        lifecycle = None
        if not spec.autoscaling:
            properties["dataproc:dataproc.allow.zero.workers"] = "true"
            cluster_config["worker_config"] = {"num_instances": 0}
        else:
            self.autoscaling_policy = DataprocAutoscalingPolicy(
                self,
                "autoscaling",
                policy_id=spec.autoscaling_policy_id,
                location=spec.region,
                worker_config={"min_instances": s.primary_workers, "max_instances": s.max_primary_workers},
                secondary_worker_config={"min_instances": 0, "max_instances": s.max_secondary_workers},
                basic_algorithm={"cooldown_period": "120s", "yarn_config": {
                    "graceful_decommission_timeout": "3600s", "scale_up_factor": 0.5, "scale_down_factor": 0.5}},
            )
            worker: dict = {"num_instances": s.primary_workers, "machine_type": s.effective_worker_machine_type, "disk_config": disk}
            if gpus:
                worker["accelerators"] = [DataprocClusterClusterConfigWorkerConfigAccelerators(accelerator_type=s.gpu_type, accelerator_count=s.gpu_count)]
                cluster_config["initialization_action"] = [DataprocClusterClusterConfigInitializationAction(
                    script=GPU_DRIVER_ACTION.format(region=spec.region), timeout_sec=1800)]
                cluster_config["gce_cluster_config"]["metadata"]["install-gpu-agent"] = "true"
            cluster_config["worker_config"] = worker
            cluster_config["preemptible_worker_config"] = {"num_instances": 0, "preemptibility": "SPOT"}
            cluster_config["autoscaling_config"] = {"policy_uri": self.autoscaling_policy.name}
            lifecycle = TerraformResourceLifecycle(ignore_changes=AUTOSCALED_ATTRIBUTES)
        self.cluster = DataprocCluster(self, "cluster", name=spec.name, region=spec.region,
                                       graceful_decommission_timeout="120s", cluster_config=cluster_config,
                                       lifecycle=lifecycle)
