"""`<env>-bootstrap`: what a project owner applies before the CI deployer can run.

The state bucket of every other stack, the APIs, Google's service agents, the audit logs, the
CI identities, the workload service accounts with who may act as them, and the secrets whose
values are added by hand, with who may read them. The CI deployer can change none of this.

Its own state starts local (an empty project has no bucket) and moves into the bucket it
created: `make deploy` (dataplatform/tools/cdktn_run.py) synthesizes it with
DP_BOOTSTRAP_BACKEND=local for that first apply, pushes the state to
`gs://<state bucket>/<env>/bootstrap`, deletes the local copy, and from then on uses the GCS
backend (the default synthesized here).
"""

from __future__ import annotations

import os

from cdktn import GcsBackend, LocalBackend, TerraformOutput
from constructs import Construct

from dataplatform.config import Environment, Profile
from dataplatform.constructs.audit_logs import AuditLogs, AuditLogsSettings
from dataplatform.constructs.github_ci import GithubCiIdentities, GithubCiSettings
from dataplatform.constructs.iam import Principal, service_agent
from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings
from dataplatform.constructs.project_apis import ProjectApis, ProjectApisSettings, api_dependencies
from dataplatform.constructs.secret import HAND_FILLED_SECRETS, Secret, SecretSettings, secret_id
from dataplatform.constructs.service_agents import ServiceAgents, ServiceAgentsSettings
from dataplatform.constructs.workload_identities import WorkloadIdentities, WorkloadIdentitiesSettings, act_as_grants, workloads_of
from dataplatform.ordering import DependencyPlan, wire_api_enablement, wire_service_agents
from dataplatform.stacks.base import EnvironmentStack
from dataplatform.state import BACKEND_ENV, bootstrap_state_prefix, local_state_path, state_bucket_name  # noqa: F401 (re-exported)

def composer_bucket_prefix(env: Environment) -> str:
    """Composer names its bucket `<region>-<environment name>-<random>-bucket`."""
    return f"{env.region}-{env.namer.resource('composer')}-"


class BootstrapStack(EnvironmentStack):
    def __init__(self, scope: Construct, id_: str, env: Environment):
        super().__init__(scope, id_, env)
        if os.environ.get(BACKEND_ENV, "gcs") == "local":
            LocalBackend(self, path=f"../../../{local_state_path(id_)}")
        else:
            GcsBackend(self, bucket=state_bucket_name(env), prefix=bootstrap_state_prefix(env))
        namer, project = env.namer, env.project_id

        self.apis = ProjectApis(self, "apis", ProjectApisSettings(project=project))
        self.agents = ServiceAgents(self, "service-agents", ServiceAgentsSettings(
            project=project, project_number=env.project_number, apis=self.apis))
        # Terraform state of the bootstrap and platform stacks.
        self.state_bucket = LakeBucket(self, "state", LakeBucketSettings(
            name=state_bucket_name(env), location=env.region, kind=BucketKind.STATE,
            noncurrent_version_days=env.storage.noncurrent_version_days, soft_delete_days=env.storage.soft_delete_days,
        ))
        AuditLogs(self, "audit", AuditLogsSettings(project=project))

        plan_buckets = [namer.bucket("artifacts")]
        if env.profile is Profile.managed:
            plan_buckets.append(composer_bucket_prefix(env))
        self.ci = GithubCiIdentities(self, "ci", GithubCiSettings(
            namer=namer, project=project, billing_account=env.billing_account,
            repository=env.github.repository, repository_id=env.github.repository_id, owner_id=env.github.owner_id,
            deploy_branch=env.github.deploy_branch, github_environment=env.name,
            state_bucket=self.state_bucket, plan_readable_bucket_prefixes=tuple(plan_buckets),
        ))
        workloads = workloads_of(env)
        data_scientists = env.ml.data_scientists_group if env.ml is not None else None
        self.identities = WorkloadIdentities(self, "identities", WorkloadIdentitiesSettings(
            namer=namer, workloads=workloads,
            grants=act_as_grants(
                workloads, deployer=self.ci.deployer.principal, managed=env.profile is Profile.managed,
                operators=Principal.group("operators", env.operators_group),
                composer_agent=service_agent("composer", env.project_number),
                data_scientists=Principal.group("data-scientists", data_scientists) if data_scientists else None),
        ))

        self.secrets = {
            key: Secret(self, key, SecretSettings(secret_id=secret_id(namer, key), region=env.region))
            for key in HAND_FILLED_SECRETS  # what each holds: dataplatform/handfilled.py
        }
        self.secrets["mail-api-key"].grant_access(self.identities["etl-worker"].principal)
        self.secrets["github-oauth-token"].grant_access(service_agent("cloudbuild", env.project_number))

        TerraformOutput(self, "state_bucket", value=self.state_bucket.name)
        TerraformOutput(self, "workload_identity_provider", value=self.ci.provider_name)
        TerraformOutput(self, "plan_service_account", value=self.ci.plan.email)
        TerraformOutput(self, "deploy_service_account", value=self.ci.deployer.email)
        for key, secret in self.secrets.items():
            TerraformOutput(self, f"secret_{key.replace('-', '_')}", value=secret.secret_id)

    def wire_dependencies(self, plan: DependencyPlan) -> None:
        wire_api_enablement(plan, self.apis.services, api_dependencies)
        wire_service_agents(plan, self.grant_ledger, self.agents.agents, self.env.project_number, self.apis.services)
