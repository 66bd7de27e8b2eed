import re

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import GITHUB_ISSUER, block, value

PINS = (
    re.compile(r"assertion\.repository\s*==\s*['\"][\w.-]+/[\w.-]+['\"]"),
    re.compile(r"assertion\.repository_id\s*==\s*['\"]\d+['\"]"),
    re.compile(r"assertion\.sub\s*==\s*['\"]repo:[\w.-]+/[\w.-]+:[^'\"*]+['\"]"),
)


class GithubProviderPinsRepository(BaseResourceCheck):
    """A GitHub OIDC provider pins one repository (guardrail GR-IAM-007).

    Replaces CKV_GCP_125, which only accepts `assertion.sub == ...` and so rejects the
    `assertion.repository == 'owner/name'` pin Google documents.
    """

    def __init__(self) -> None:
        super().__init__(name="Ensure a GitHub Actions workload identity provider pins one repository", id="CKV_DP_8",
                         categories=(CheckCategories.IAM,), supported_resources=("google_iam_workload_identity_pool_provider",))

    def scan_resource_conf(self, conf):
        if value(block(conf, "oidc"), "issuer_uri") != GITHUB_ISSUER:
            return CheckResult.PASSED
        self.evaluated_keys = ["attribute_condition"]
        condition = value(conf, "attribute_condition") or ""
        return CheckResult.PASSED if any(p.search(str(condition)) for p in PINS) else CheckResult.FAILED


check = GithubProviderPinsRepository()
