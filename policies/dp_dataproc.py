from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import block, is_true, value

DELETING = ("idle_delete_ttl", "auto_delete_time", "auto_delete_ttl")


class DataprocInternalIpOnly(BaseResourceCheck):
    """Dataproc nodes without external IPs (guardrail GR-CMP-006)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure Dataproc clusters use internal IPs only", id="CKV_DP_5",
                         categories=(CheckCategories.NETWORKING,), supported_resources=("google_dataproc_cluster",))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["cluster_config/[0]/gce_cluster_config/[0]/internal_ip_only"]
        gce = block(conf, "cluster_config.gce_cluster_config")
        return CheckResult.PASSED if is_true(value(gce, "internal_ip_only")) else CheckResult.FAILED


class DataprocIdleStop(BaseResourceCheck):
    """Dataproc clusters stop when idle and are never deleted behind Terraform's back (guardrail GR-CMP-007)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure Dataproc clusters stop when idle (idle_stop_ttl) and never auto-delete",
                         id="CKV_DP_6", categories=(CheckCategories.GENERAL_SECURITY,), supported_resources=("google_dataproc_cluster",))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["cluster_config/[0]/lifecycle_config/[0]/idle_stop_ttl"]
        lifecycle = block(conf, "cluster_config.lifecycle_config")
        if any(value(lifecycle, k) for k in DELETING):
            return CheckResult.FAILED
        return CheckResult.PASSED if value(lifecycle, "idle_stop_ttl") else CheckResult.FAILED


internal_ip_only = DataprocInternalIpOnly()
idle_stop = DataprocIdleStop()
