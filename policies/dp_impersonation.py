import re

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck
from checkov.terraform.checks.resource.gcp.AbsGoogleImpersonationRoles import IMPERSONATION_ROLES as CHECKOV_ROLES

from dp_common import block, value

IMPERSONATION = {"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator",
                 "roles/iam.serviceAccountOpenIdTokenCreator", "roles/iam.workloadIdentityUser"}
LEVELS = ("project", "folder", "organization")


class NoProjectWideImpersonation(BaseResourceCheck):
    """actAs / token creation only on a named service account (guardrail GR-IAM-004)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure actAs/token creator roles are never granted project/folder/org-wide", id="CKV_DP_7",
                         categories=(CheckCategories.IAM,),
                         supported_resources=tuple(f"google_{lvl}_iam_{kind}" for lvl in LEVELS for kind in ("member", "binding")))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["role"]
        return CheckResult.FAILED if value(conf, "role") in IMPERSONATION else CheckResult.PASSED


# The narrow replacement for CKV_GCP_49 (skipped in .checkov.yaml): checkov's own list of roles
# that can impersonate or manage service accounts, failing every project-level grant of one
# except to the holder each is documented for. A new holder is a reviewed change here.
SERVICE_AGENT = re.compile(r"^serviceAccount:service-\d+@[a-z0-9-]+\.iam\.gserviceaccount\.com$")
ALLOWED_HOLDERS = {
    # the launcher and Airflow launch ETL jobs; they can run them only as the ETL worker, the one account they may act as
    "roles/dataflow.developer": re.compile(r"^serviceAccount:[a-z0-9-]+-(launcher|orchestrator)@"),
    # Composer requires it on the environment's own account
    "roles/composer.worker": re.compile(r"^serviceAccount:[a-z0-9-]+-orchestrator@"),
    # the CI deployer creates the ETL build trigger, whose builds run as the build account only
    "roles/cloudbuild.builds.editor": re.compile(r"^serviceAccount:(\$\{google_service_account\.ci_ci-deployer_sa_[A-F0-9]+\.email\}|[a-z0-9-]+-ci-deploy@)"),
}


def allowed(role: str, member: str) -> bool:
    if role.endswith(".serviceAgent"):  # Google's own agents get their service-agent role
        return bool(SERVICE_AGENT.match(member))
    holder = ALLOWED_HOLDERS.get(role)
    return bool(holder and holder.match(member))


class ImpersonationRolesOnlyToTheirHolders(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(name="Ensure project-level roles that can impersonate or manage service accounts go only to their documented holder",
                         id="CKV_DP_10", categories=(CheckCategories.IAM,),
                         supported_resources=("google_project_iam_member", "google_project_iam_binding"))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["role", "member", "members"]
        role = value(conf, "role")
        if role not in CHECKOV_ROLES:
            return CheckResult.PASSED
        members = value(conf, "members") or [value(conf, "member")]
        members = members if isinstance(members, list) else [members]
        return CheckResult.PASSED if all(allowed(role, str(m)) for m in members) else CheckResult.FAILED


ROLE_GRANTING = {"roles/resourcemanager.projectIamAdmin", "roles/iam.securityAdmin", "roles/resourcemanager.folderIamAdmin"}
GRANT_LIMIT = re.compile(r"modifiedGrantsByRole['\"]\s*,\s*\[\s*\]\s*\)\s*\.hasOnly\(")


class RoleGrantingRolesAreLimited(BaseResourceCheck):
    """projectIamAdmin & co. only under a condition limiting the roles it may grant (guardrail GR-IAM-009)."""

    def __init__(self) -> None:
        super().__init__(name="Ensure roles that grant roles carry a modifiedGrantsByRole condition",
                         id="CKV_DP_11", categories=(CheckCategories.IAM,),
                         supported_resources=tuple(f"google_{lvl}_iam_{kind}" for lvl in LEVELS for kind in ("member", "binding")))

    def scan_resource_conf(self, conf):
        self.evaluated_keys = ["role", "condition"]
        if value(conf, "role") not in ROLE_GRANTING:
            return CheckResult.PASSED
        expression = str(value(block(conf, "condition"), "expression") or "")
        return CheckResult.PASSED if GRANT_LIMIT.search(expression) else CheckResult.FAILED


check = NoProjectWideImpersonation()
holders = ImpersonationRolesOnlyToTheirHolders()
granting = RoleGrantingRolesAreLimited()
