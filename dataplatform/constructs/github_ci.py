"""CI identities for GitHub Actions through Workload Identity Federation (no keys).

Two identities: `plan` (read-only, any workflow of the repository, for pull requests)
and `deployer` (changes the platform, only workflows running on the deploy branch).
The provider's attribute_condition pins the repository: without it any GitHub
repository could mint tokens from this pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.billing_account_iam_member import BillingAccountIamMember
from cdktn_provider_google.iam_workload_identity_pool import IamWorkloadIdentityPool
from cdktn_provider_google.iam_workload_identity_pool_provider import (
    IamWorkloadIdentityPoolProvider,
    IamWorkloadIdentityPoolProviderOidc,
)
from constructs import Construct

from dataplatform.constructs.iam import Principal, grant_project_roles
from dataplatform.constructs.lake_bucket import LakeBucket
from dataplatform.constructs.service_account import WorkloadIdentity, WorkloadIdentitySettings
from dataplatform.naming import Namer

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

# Read-only roles for `terraform plan`; predefined viewer roles, never roles/viewer.
PLAN_ROLES = {
    "roles/iam.securityReviewer": "plan reads IAM policies of every resource type",
    "roles/compute.networkViewer": "plan reads VPC, subnets, routers, firewalls",
    "roles/compute.viewer": "plan reads instances",
    "roles/storage.bucketViewer": "plan reads bucket settings (not objects)",
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
    "roles/composer.user": "plan reads Composer environments",
    "roles/dataproc.viewer": "plan reads clusters and autoscaling policies",
    "roles/dataplex.dataScanViewer": "plan reads data scans",
    "roles/run.viewer": "plan reads the launcher's Cloud Run service and its IAM",
    "roles/cloudbuild.connectionViewer": "plan reads the GitHub connection and repository",
    "roles/artifactregistry.reader": "plan reads repositories",
    "roles/cloudbuild.builds.viewer": "plan reads build triggers",
    "roles/pubsub.viewer": "plan reads the budget topic",
}

# What `terraform apply` needs to create and change every component. Project-level by
# necessity: the resources do not exist before the deployer creates them.
DEPLOY_ROLES = {
    "roles/storage.admin": "creates lake buckets, managed folders and their IAM",
    "roles/compute.networkAdmin": "creates VPC, subnet, router and NAT",
    "roles/compute.securityAdmin": "creates firewall rules",
    "roles/compute.instanceAdmin.v1": "creates the Airflow VM",
    "roles/iam.serviceAccountAdmin": "creates workload service accounts and their IAM",
    "roles/resourcemanager.projectIamAdmin": "grants the few project-scoped roles workloads need",
    "roles/bigquery.dataOwner": "creates datasets, tables and dataset IAM",
    "roles/secretmanager.admin": "creates secrets and their IAM (never values)",
    "roles/serviceusage.serviceUsageAdmin": "enables APIs",
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
    "roles/artifactregistry.admin": "creates the image repository",
    "roles/cloudbuild.builds.editor": "creates build triggers",
    "roles/pubsub.editor": "creates the budget topic",
}


@dataclass(frozen=True)
class GithubCiSettings:
    namer: Namer
    project: str
    billing_account: str
    repository: str
    deploy_branch: str
    state_bucket: LakeBucket


class GithubCiIdentities(Construct):
    def __init__(self, scope: Construct, id_: str, settings: GithubCiSettings):
        super().__init__(scope, id_)
        namer = settings.namer
        self.pool = IamWorkloadIdentityPool(
            self,
            "pool",
            workload_identity_pool_id=namer.wif_pool("github"),
            display_name=f"GitHub Actions {namer.env}"[:32],
            description=f"GitHub Actions of {settings.repository}",
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
                "attribute.ref": "assertion.ref",
                "attribute.repository_ref": "assertion.repository + '@' + assertion.ref",
            },
            attribute_condition=f"assertion.repository == '{settings.repository}'",
            oidc=IamWorkloadIdentityPoolProviderOidc(issuer_uri=GITHUB_ISSUER),
        )
        pool = self.pool.name
        repo_principal = Principal("github-repo", f"principalSet://iam.googleapis.com/{pool}/attribute.repository/{settings.repository}")
        branch_principal = Principal(
            "github-deploy-branch",
            f"principalSet://iam.googleapis.com/{pool}/attribute.repository_ref/{settings.repository}@refs/heads/{settings.deploy_branch}",
        )

        self.plan = WorkloadIdentity(self, "ci-plan", WorkloadIdentitySettings(namer.service_account("ci-plan"), "read-only terraform plan for pull requests"))
        self.deployer = WorkloadIdentity(self, "ci-deployer", WorkloadIdentitySettings(namer.service_account("ci-deploy"), f"terraform apply from {settings.deploy_branch}"))
        self.plan.bind("roles/iam.workloadIdentityUser", repo_principal)
        self.deployer.bind("roles/iam.workloadIdentityUser", branch_principal)

        grant_project_roles(self, settings.project, self.plan.principal, PLAN_ROLES)
        grant_project_roles(self, settings.project, self.deployer.principal, DEPLOY_ROLES)
        settings.state_bucket.grant_read(self.plan.principal)  # plan reads state, cannot write it
        # Budgets live on the billing account, so their grants do too (a billing admin runs the bootstrap).
        BillingAccountIamMember(self, "billing-costs-manager-deployer", billing_account_id=settings.billing_account,
                                role="roles/billing.costsManager", member=self.deployer.principal.member)
        BillingAccountIamMember(self, "billing-viewer-plan", billing_account_id=settings.billing_account,
                                role="roles/billing.viewer", member=self.plan.principal.member)
        settings.state_bucket.grant_read_write(self.deployer.principal)

    @property
    def provider_name(self) -> str:
        """For google-github-actions/auth's workload_identity_provider input."""
        return self.provider.name
