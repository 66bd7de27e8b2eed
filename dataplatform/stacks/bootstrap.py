"""`<env>-bootstrap`: what must exist before the platform stack can have remote state."""

from __future__ import annotations

from cdktn import LocalBackend, TerraformOutput
from cdktn_provider_google.project_iam_audit_config import ProjectIamAuditConfig, ProjectIamAuditConfigAuditLogConfig
from constructs import Construct

from dataplatform.config import Environment
from dataplatform.constructs.github_ci import GithubCiIdentities, GithubCiSettings
from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings
from dataplatform.constructs.project_apis import ProjectApis, ProjectApisSettings
from dataplatform.stacks.base import EnvironmentStack


def state_bucket_name(env: Environment) -> str:
    return env.namer.bucket("tfstate")


class BootstrapStack(EnvironmentStack):
    def __init__(self, scope: Construct, id_: str, env: Environment):
        super().__init__(scope, id_, env)
        # Local state: this stack creates the bucket every other stack keeps its state in.
        LocalBackend(self, path=f"../../../state/{id_}.tfstate")

        self.apis = ProjectApis(self, "apis", ProjectApisSettings(project=env.project_id))
        self.state_bucket = LakeBucket(
            self,
            "state",
            LakeBucketSettings(
                name=state_bucket_name(env),
                location=env.region,
                kind=BucketKind.STATE,
                purpose="Terraform state of the platform stack",
                noncurrent_version_days=env.storage.noncurrent_version_days,
                soft_delete_days=env.storage.soft_delete_days,
            ),
        )
        # Who read or wrote which object: Data Access audit logs are off by default for GCS.
        ProjectIamAuditConfig(self, "audit-storage", project=env.project_id, service="storage.googleapis.com",
                              audit_log_config=[ProjectIamAuditConfigAuditLogConfig(log_type=t) for t in ("DATA_READ", "DATA_WRITE")])
        self.ci = GithubCiIdentities(
            self,
            "ci",
            GithubCiSettings(
                namer=env.namer,
                project=env.project_id,
                billing_account=env.billing_account,
                repository=env.github.repository,
                deploy_branch=env.github.deploy_branch,
                state_bucket=self.state_bucket,
            ),
        )
        TerraformOutput(self, "state_bucket", value=self.state_bucket.name)
        TerraformOutput(self, "workload_identity_provider", value=self.ci.provider_name)
        TerraformOutput(self, "plan_service_account", value=self.ci.plan.email)
        TerraformOutput(self, "deploy_service_account", value=self.ci.deployer.email)
