from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

from dp_common import value

IMPERSONATION = {"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator",
                 "roles/iam.serviceAccountOpenIdTokenCreator", "roles/iam.workloadIdentityUser"}


class NoProjectWideImpersonation(BaseResourceCheck):
    """actAs / token creation only on a named service account (guardrail GR-IAM-004).

    The narrow replacement for CKV_GCP_49, which is skipped in .checkov.yaml.
    """

    def __init__(self) -> None:
        levels = ("project", "folder", "organization")
        super().__init__(name="Ensure actAs/token creator roles are never granted project/folder/org-wide", id="CKV_DP_7",
                         categories=(CheckCategories.IAM,),
                         supported_resources=tuple(f"google_{lvl}_iam_{kind}" for lvl in levels for kind in ("member", "binding")))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["role"]
        return CheckResult.FAILED if value(conf, "role") in IMPERSONATION else CheckResult.PASSED


check = NoProjectWideImpersonation()
