from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import block
from dp_labelable_types import LABELABLE

REQUIRED = ("owner", "cost_center", "env", "managed_by")


class RequiredLabels(BaseResourceCheck):
    """Every labelable resource carries the cost-attribution labels (guardrail GR-LBL-001)."""

    def __init__(self) -> None:
        super().__init__(name=f"Ensure labelable resources carry the labels {', '.join(REQUIRED)}", id="CKV_DP_2",
                         categories=(CheckCategories.CONVENTION,), supported_resources=("google_*",))

    def scan_resource_conf(self, conf):
        attribute = LABELABLE.get(self.entity_type)
        if attribute is None:
            return CheckResult.UNKNOWN  # takes no labels: not reported
        self.evaluated_keys = [attribute]
        labels = block(conf, attribute)
        return CheckResult.PASSED if all(k in labels for k in REQUIRED) else CheckResult.FAILED


check = RequiredLabels()
