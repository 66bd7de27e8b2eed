import re

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import GITHUB_ISSUER, block, value

REPO_ID = re.compile(r"assertion\.repository_id\s*==\s*['\"]\d+['\"]")
OWNER_ID = re.compile(r"assertion\.repository_owner_id\s*==\s*['\"]\d+['\"]")


class GithubProviderPinsRepository(BaseResourceCheck):
    """A GitHub OIDC provider pins one repository and its owner by numeric id (guardrail GR-IAM-007).

    Replaces CKV_GCP_125, which only accepts `assertion.sub == ...` (a name-based subject)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure a GitHub Actions workload identity provider pins repository_id and repository_owner_id",
                         id="CKV_DP_8", categories=(CheckCategories.IAM,),
                         supported_resources=("google_iam_workload_identity_pool_provider",))

    def scan_resource_conf(self, conf):
        if value(block(conf, "oidc"), "issuer_uri") != GITHUB_ISSUER:
            return CheckResult.PASSED
        self.evaluated_keys = ["attribute_condition"]
        condition = str(value(conf, "attribute_condition") or "")
        pinned = REPO_ID.search(condition) and OWNER_ID.search(condition) and "||" not in condition
        return CheckResult.PASSED if pinned else CheckResult.FAILED


check = GithubProviderPinsRepository()
