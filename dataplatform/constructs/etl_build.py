"""CI/CD of the ETL: a Cloud Build trigger on the GitHub repository (2nd-gen connection).

Cloud Source Repositories is closed to new customers, so the source is GitHub through
a Cloud Build connection. The GitHub OAuth token lives in Secret Manager, added out of band.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.cloudbuild_trigger import CloudbuildTrigger
from cdktn_provider_google.cloudbuildv2_connection import Cloudbuildv2Connection
from cdktn_provider_google.cloudbuildv2_repository import Cloudbuildv2Repository
from constructs import Construct

from dataplatform.constructs.secret import Secret
from dataplatform.constructs.service_account import WorkloadIdentity

BUILD_CONFIG = "workloads/etl/cloudbuild.yaml"


@dataclass(frozen=True)
class EtlBuildSpec:
    name: str
    trigger_name: str
    region: str
    repository: str  # owner/name
    branch: str
    app_installation_id: int
    oauth_token: Secret
    oauth_token_version: int
    identity: WorkloadIdentity
    image: str
    template_path: str


class EtlBuild(Construct):
    def __init__(self, scope: Construct, id_: str, spec: EtlBuildSpec):
        super().__init__(scope, id_)
        connection = Cloudbuildv2Connection(
            self,
            "connection",
            name=spec.name,
            location=spec.region,
            github_config={
                "app_installation_id": spec.app_installation_id,
                "authorizer_credential": {
                    "oauth_token_secret_version": f"{spec.oauth_token.secret.id}/versions/{spec.oauth_token_version}"},
            },
        )
        repo = Cloudbuildv2Repository(
            self,
            "repository",
            name=spec.repository.split("/")[1],
            location=spec.region,
            parent_connection=connection.name,
            remote_uri=f"https://github.com/{spec.repository}.git",
        )
        self.trigger = CloudbuildTrigger(
            self,
            "trigger",
            name=spec.trigger_name,
            location=spec.region,
            description="Build the ETL Flex Template image and spec on pushes that touch the ETL",
            repository_event_config={"repository": repo.id, "push": {"branch": f"^{spec.branch}$"}},
            filename=BUILD_CONFIG,
            included_files=["workloads/etl/**"],
            substitutions={"_IMAGE": spec.image, "_TEMPLATE_PATH": spec.template_path},
            service_account=spec.identity.resource_id,
            include_build_logs="INCLUDE_BUILD_LOGS_WITH_STATUS",
        )
