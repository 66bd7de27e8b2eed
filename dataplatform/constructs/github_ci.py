"""CI identities for GitHub Actions through Workload Identity Federation (no keys).

Two identities: `plan` (read-only, any workflow of the repository, for pull requests) and
`deployer` (changes the platform stack). What pins them:
- the provider's attribute_condition pins the repository and its owner by *numeric id*
  (a name can be registered again after a repository is deleted or renamed);
- the deployer is usable only from the deploy workflow on the deploy branch, in the GitHub
  environment named like the environment file (claims `job_workflow_ref` and `environment`,
  see contract C3): GCP enforces the protected environment's approval, not only GitHub.

What the deployer can do, and what it cannot (README "What the CI identities can do"):
- it holds predefined roles to create the platform's resources, and
  `resourcemanager.projectIamAdmin` only under an IAM condition that lets it grant or revoke
  exactly the project roles in DEPLOYER_GRANTABLE_ROLES (never owner, editor, its own admin
  roles, actAs or token creator);
- it holds no service-account admin role and no Secret Manager role: the workload accounts,
  who may act as them, the secrets and who may read them all live in the bootstrap stack, which
  only a project owner applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.billing_account_iam_member import BillingAccountIamMember
from cdktn_provider_google.iam_workload_identity_pool import IamWorkloadIdentityPool
from cdktn_provider_google.iam_workload_identity_pool_provider import (
    IamWorkloadIdentityPoolProvider,
    IamWorkloadIdentityPoolProviderOidc,
)
from cdktn_provider_google.project_iam_custom_role import ProjectIamCustomRole
from constructs import Construct

from dataplatform.constructs.iam import Principal, grant_member, grant_project_member, grant_project_role_if, grant_project_roles
from dataplatform.constructs.lake_bucket import LakeBucket
from dataplatform.constructs.service_account import WorkloadIdentity, WorkloadIdentitySettings
from dataplatform.constructs.workload_identities import ALL_WORKLOADS
from dataplatform.naming import Namer

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
DEPLOY_WORKFLOW = ".github/workflows/deploy-env.yml"
"""The reusable workflow whose `deploy` job is the only user of the deployer identity (contract C3)."""

# Read-only roles for `terraform plan`; predefined viewer roles, never roles/viewer.
PLAN_ROLES = {
    "roles/iam.securityReviewer": "plan reads IAM policies of every resource type",
    "roles/compute.networkViewer": "plan reads VPC, subnets, routers, firewalls",
    "roles/compute.viewer": "plan reads instances",
    "roles/bigquery.metadataViewer": "plan reads datasets and table schemas, not rows",
    "roles/secretmanager.viewer": "plan reads secret metadata, never values",
    "roles/serviceusage.serviceUsageViewer": "plan reads enabled APIs",
    "roles/iam.workloadIdentityPoolViewer": "plan reads the CI pool itself",
    "roles/iam.serviceAccountViewer": "plan reads service accounts",
    "roles/monitoring.viewer": "plan reads alerting and channels",
    "roles/logging.viewer": "plan reads log-based metrics",
    "roles/cloudfunctions.viewer": "plan reads the launcher",
    "roles/eventarc.viewer": "plan reads triggers",
    "roles/cloudscheduler.viewer": "plan reads schedules",
    "roles/dataproc.viewer": "plan reads clusters and autoscaling policies",
    "roles/dataplex.dataScanViewer": "plan reads data scans",
    "roles/run.viewer": "plan reads the launcher's Cloud Run service and its IAM",
    "roles/cloudbuild.connectionViewer": "plan reads the GitHub connection and repository",
    "roles/artifactregistry.reader": "plan reads repositories",
    "roles/cloudbuild.builds.viewer": "plan reads build triggers",
    "roles/pubsub.viewer": "plan reads the budget topic",
    "roles/cloudtasks.viewer": "plan reads the follow-up queue and its IAM",
    "roles/workflows.viewer": "plan reads the ML jobs and budget relay workflows",
    "roles/notebooks.viewer": "plan reads the Workbench instance and its IAM",
}
# Where no predefined role is read-only enough (composer.user can open the Airflow UI and run
# DAGs; storage.objectViewer would read every data object), a custom role with the reads only.
PLAN_CUSTOM_PERMISSIONS = (
    "composer.environments.get", "composer.environments.list", "composer.operations.get", "composer.operations.list",
    "storage.buckets.get", "storage.buckets.list", "storage.buckets.getIamPolicy",
    "storage.managedFolders.get", "storage.managedFolders.list", "storage.managedFolders.getIamPolicy",
)

# What `terraform apply` of the platform stack needs. Project-level by necessity: the resources
# do not exist before the deployer creates them.
DEPLOY_ROLES = {
    "roles/storage.admin": "creates lake buckets, managed folders, their IAM and the objects Terraform ships",
    "roles/compute.networkAdmin": "creates VPC, subnet, router and NAT",
    "roles/compute.securityAdmin": "creates firewall rules",
    "roles/compute.instanceAdmin.v1": "creates the Airflow VM",
    "roles/iam.serviceAccountViewer": "reads the workload accounts it attaches (they are created by the bootstrap stack)",
    "roles/bigquery.dataOwner": "creates datasets, tables and dataset IAM",
    "roles/monitoring.editor": "creates channels and alert policies",
    "roles/logging.configWriter": "creates log-based metrics",
    "roles/cloudfunctions.developer": "deploys the launcher",
    "roles/eventarc.admin": "creates triggers",
    "roles/cloudscheduler.admin": "creates schedules",
    "roles/composer.admin": "creates Composer environments",
    "roles/dataproc.editor": "creates clusters and autoscaling policies",
    "roles/dataplex.dataScanAdmin": "creates data scans",
    "roles/run.admin": "sets the invoker binding on the launcher's Cloud Run service",
    "roles/iap.admin": "grants operators IAP tunnel access to the Airflow VM (instance-level IAM)",
    "roles/cloudbuild.connectionAdmin": "creates the GitHub connection and repository link",
    "roles/artifactregistry.admin": "creates the image repositories and their IAM",
    "roles/cloudbuild.builds.editor": "creates build triggers",
    "roles/pubsub.editor": "creates the budget and ML topics and the ML log sink's destination",
    "roles/cloudtasks.admin": "creates the follow-up queue and its IAM (who may request a run)",
    "roles/workflows.editor": "creates the ML jobs and budget relay workflows",
    "roles/notebooks.admin": "creates the data scientists' Workbench instance and its IAM (managed profile with ml:)",
}
# No predefined role without a wider grant: a budget wired to a topic needs its creator to set
# the topic's IAM policy (the Billing service then publishes to it).
DEPLOY_CUSTOM_PERMISSIONS = ("pubsub.topics.getIamPolicy", "pubsub.topics.setIamPolicy")

# Project roles the platform stack grants; the deployer's projectIamAdmin is conditioned to these.
# A new project-level grant in the platform is a reviewed change here (tests/test_least_privilege.py
# fails until it is listed).
COMPONENT_PROJECT_ROLES = {
    "roles/composer.worker",  # orchestration.Composer: the environment's account (Composer requirement)
    "roles/composer.user",  # orchestration.Composer: operators open the Airflow UI
    "roles/pubsub.publisher",  # processing.Launcher: the GCS service agent publishes object events
    "roles/artifactregistry.writer",  # platform: the function build pushes to gcf-artifacts (IAM condition on the repository)
}
DEPLOYER_GRANTABLE_ROLES: tuple[str, ...] = tuple(sorted(
    {role for w in ALL_WORKLOADS.values() for role in w.project_roles} | COMPONENT_PROJECT_ROLES))


def grantable_roles_condition(roles: tuple[str, ...]) -> str:
    """IAM condition letting a projectIamAdmin grant or revoke only `roles` (modifiedGrantsByRole)."""
    listed = ", ".join(f"'{r}'" for r in roles)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{listed}])"


def deploy_principal_value(settings: "GithubCiSettings") -> str:
    """The `attribute.deploy` value of tokens from the deploy job (job_workflow_ref + environment)."""
    return (f"{settings.repository}/{DEPLOY_WORKFLOW}@refs/heads/{settings.deploy_branch}"
            f":environment:{settings.github_environment}")


@dataclass(frozen=True)
class GithubCiSettings:
    namer: Namer
    project: str
    billing_account: str
    repository: str
    repository_id: int
    owner_id: int
    deploy_branch: str
    github_environment: str
    """GitHub environment of the deploy job: named exactly like the environment file (C3)."""
    state_bucket: LakeBucket
    plan_readable_bucket_prefixes: tuple[str, ...]
    """Buckets (by name prefix) holding objects Terraform manages, which `plan` must read to refresh."""


class GithubCiIdentities(Construct):
    def __init__(self, scope: Construct, id_: str, settings: GithubCiSettings):
        super().__init__(scope, id_)
        namer, project = settings.namer, settings.project
        self._project = project
        self.pool = IamWorkloadIdentityPool(
            self,
            "pool",
            workload_identity_pool_id=namer.wif_pool("github"),
            display_name=f"GitHub Actions {namer.env}"[:32],
            description=f"GitHub Actions of {settings.repository} (id {settings.repository_id})",
        )
        self.provider = IamWorkloadIdentityPoolProvider(
            self,
            "provider",
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id="github",
            display_name="GitHub OIDC",
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.repository_id": "assertion.repository_id",
                "attribute.repository_owner_id": "assertion.repository_owner_id",
                # One attribute for the two claims the deployer needs together; tokens of jobs without
                # an environment (pull requests) map to '...:environment:none' and match no binding.
                "attribute.deploy": ("(has(assertion.job_workflow_ref) ? assertion.job_workflow_ref : 'none') + "
                                     "':environment:' + (has(assertion.environment) ? assertion.environment : 'none')"),
            },
            attribute_condition=(f"assertion.repository_id == '{settings.repository_id}' && "
                                 f"assertion.repository_owner_id == '{settings.owner_id}'"),
            oidc=IamWorkloadIdentityPoolProviderOidc(issuer_uri=GITHUB_ISSUER),
        )
        pool = self.pool.name
        repo_principal = Principal("github-repo", f"principalSet://iam.googleapis.com/{pool}/attribute.repository_id/{settings.repository_id}")
        deploy_principal = Principal("github-deploy-job", f"principalSet://iam.googleapis.com/{pool}/attribute.deploy/{deploy_principal_value(settings)}")

        self.plan = WorkloadIdentity(self, "ci-plan", WorkloadIdentitySettings(namer.service_account("ci-plan"), "read-only terraform plan for pull requests"))
        self.deployer = WorkloadIdentity(self, "ci-deployer", WorkloadIdentitySettings(
            namer.service_account("ci-deploy"), f"terraform apply of the platform from {DEPLOY_WORKFLOW} on {settings.deploy_branch}"))
        self.plan.bind("roles/iam.workloadIdentityUser", repo_principal)
        self.deployer.bind("roles/iam.workloadIdentityUser", deploy_principal)

        # --- plan: read-only, including the objects Terraform manages (a refresh reads them)
        grant_project_roles(self, project, self.plan.principal, PLAN_ROLES)
        self._custom_role("plan-reads", namer.custom_role("ci_plan_reads"), "CI plan: metadata reads without data",
                          PLAN_CUSTOM_PERMISSIONS, self.plan.principal,
                          "plan reads Composer environments and bucket/managed-folder settings; no predefined role is read-only enough")
        self._conditional(self.plan.principal, "roles/storage.objectViewer", "terraform-managed-objects",
                          " || ".join(f"resource.name.startsWith('projects/_/buckets/{b}')" for b in settings.plan_readable_bucket_prefixes),
                          "plan refreshes the objects Terraform ships (DAGs, function source); data buckets stay unreadable")
        settings.state_bucket.grant_read(self.plan.principal)  # plan reads state, cannot write it

        # --- deployer: creates the platform; grants only the listed project roles
        grant_project_roles(self, project, self.deployer.principal, DEPLOY_ROLES)
        self._custom_role("deploy-extras", namer.custom_role("ci_deploy_extras"), "CI deployer: budget topic IAM",
                          DEPLOY_CUSTOM_PERMISSIONS, self.deployer.principal,
                          "a budget wired to a Pub/Sub topic needs its creator to set the topic's IAM policy")
        self._conditional(self.deployer.principal, "roles/resourcemanager.projectIamAdmin", "only-platform-roles",
                          grantable_roles_condition(DEPLOYER_GRANTABLE_ROLES),
                          "grants the workloads' project roles; the condition allows exactly DEPLOYER_GRANTABLE_ROLES")
        settings.state_bucket.grant_read_write(self.deployer.principal)

        # Budgets live on the billing account, so their grants do too (a billing admin runs the bootstrap).
        grant_member(self, BillingAccountIamMember, "billing-costs-manager-deployer", "roles/billing.costsManager",
                     self.deployer.principal, billing_account_id=settings.billing_account)
        grant_member(self, BillingAccountIamMember, "billing-viewer-plan", "roles/billing.viewer", self.plan.principal,
                     billing_account_id=settings.billing_account)

    def _custom_role(self, id_: str, role_id: str, title: str, permissions: tuple[str, ...], principal: Principal, reason: str) -> None:
        project = self._project
        role = ProjectIamCustomRole(self, id_, role_id=role_id, title=title, description=reason,
                                    permissions=sorted(permissions), project=project)
        grant_project_member(self, f"{id_}-{principal.key}", project, principal, role.name, reason)

    def _conditional(self, principal: Principal, role: str, title: str, expression: str, reason: str) -> None:
        grant_project_role_if(self, self._project, principal, role, title=title, expression=expression, reason=reason)

    @property
    def provider_name(self) -> str:
        """For google-github-actions/auth's workload_identity_provider input."""
        return self.provider.name
