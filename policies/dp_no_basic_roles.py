import json

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import value

BASIC = {"roles/owner", "roles/editor", "roles/viewer"}


class NoBasicRoles(BaseResourceCheck):
    """No owner/editor/viewer on any resource, member, binding or literal policy (guardrail GR-IAM-001)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure no basic roles (owner/editor/viewer) are granted", id="CKV_DP_3",
                         categories=(CheckCategories.IAM,),
                         supported_resources=("google_*_iam_member", "google_*_iam_binding", "google_*_iam_policy"))

    def scan_resource_conf(self, conf):
        roles = {value(conf, "role")}
        policy = value(conf, "policy_data")
        if isinstance(policy, str) and "${" not in policy:
            try:
                roles |= {b.get("role") for b in json.loads(policy).get("bindings", [])}
            except (ValueError, AttributeError):
                pass
        self.evaluated_keys = ["role", "policy_data"]
        return CheckResult.FAILED if roles & BASIC else CheckResult.PASSED


check = NoBasicRoles()
