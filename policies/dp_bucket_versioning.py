from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import block, is_true, value

NONCURRENT_ONLY = ("days_since_noncurrent_time", "noncurrent_time_before", "num_newer_versions")


def live_objects_expire(conf) -> bool:
    for rule in conf.get("lifecycle_rule") or []:
        if not isinstance(rule, dict) or value(block(rule, "action"), "type") != "Delete":
            continue
        condition = block(rule, "condition")
        if value(condition, "with_state") == "ARCHIVED" or any(k in condition for k in NONCURRENT_ONLY):
            continue
        return True
    return False


class VersionedUnlessScratch(BaseResourceCheck):
    """Buckets whose live objects never expire keep versions (guardrail GR-STO-005).

    Replaces CKV_GCP_78 (skipped), which also demands versions on scratch buckets whose
    objects expire after days anyway.
    """

    def __init__(self) -> None:
        super().__init__(name="Ensure buckets keeping objects indefinitely are versioned", id="CKV_DP_9",
                         categories=(CheckCategories.BACKUP_AND_RECOVERY,), supported_resources=("google_storage_bucket",))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["versioning/[0]/enabled", "lifecycle_rule"]
        if live_objects_expire(conf) or is_true(value(block(conf, "versioning"), "enabled")):
            return CheckResult.PASSED
        return CheckResult.FAILED


check = VersionedUnlessScratch()
