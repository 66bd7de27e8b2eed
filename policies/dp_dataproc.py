from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import block, is_true, value


class DataprocInternalIpOnly(BaseResourceCheck):
    """Dataproc nodes without external IPs (guardrail GR-CMP-006)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure Dataproc clusters use internal IPs only", id="CKV_DP_5",
                         categories=(CheckCategories.NETWORKING,), supported_resources=("google_dataproc_cluster",))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["cluster_config/[0]/gce_cluster_config/[0]/internal_ip_only"]
        gce = block(conf, "cluster_config.gce_cluster_config")
        return CheckResult.PASSED if is_true(value(gce, "internal_ip_only")) else CheckResult.FAILED


class DataprocIdleDelete(BaseResourceCheck):
    """Dataproc clusters delete themselves when idle (guardrail GR-CMP-007)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure Dataproc clusters have an idle delete TTL", id="CKV_DP_6",
                         categories=(CheckCategories.GENERAL_SECURITY,), supported_resources=("google_dataproc_cluster",))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["cluster_config/[0]/lifecycle_config/[0]/idle_delete_ttl"]
        ttl = value(block(conf, "cluster_config.lifecycle_config"), "idle_delete_ttl")
        return CheckResult.PASSED if ttl else CheckResult.FAILED


internal_ip_only = DataprocInternalIpOnly()
idle_delete = DataprocIdleDelete()
