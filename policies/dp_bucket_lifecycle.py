from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class BucketLifecycle(BaseResourceCheck):
    """Lake buckets age their objects with lifecycle rules (guardrail GR-STO-003)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure lake buckets have lifecycle rules", id="CKV_DP_4",
                         categories=(CheckCategories.GENERAL_SECURITY,), supported_resources=("google_storage_bucket",))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["lifecycle_rule"]
        rules = conf.get("lifecycle_rule")
        return CheckResult.PASSED if isinstance(rules, list) and any(isinstance(r, dict) for r in rules) else CheckResult.FAILED


check = BucketLifecycle()
