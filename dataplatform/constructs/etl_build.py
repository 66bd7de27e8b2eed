"""CI/CD of the ETL: a Cloud Build trigger on the GitHub repository (2nd-gen connection).

Cloud Source Repositories is closed to new customers, so the source is GitHub through a Cloud
Build connection. The connection reads its GitHub token from a *pinned* version of a secret the
bootstrap stack created, whose value an admin adds before the platform is applied: a version
of a secret created in the same apply cannot exist yet, and the connection reads it at create time.

Each environment has its own trigger on pushes to the branch. The build (workloads/etl/
cloudbuild.yaml) runs the workload tests, builds the image, smoke-tests it, then pushes it and
writes the environment's template spec. Promotion: `automatic` (dev: every tested push becomes
the template) or `approval` (prod: every build waits for a Cloud Build approver before it runs,
so nothing reaches prod that someone did not deliberately promote).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.cloudbuild_trigger import CloudbuildTrigger
from cdktn_provider_google.cloudbuildv2_connection import Cloudbuildv2Connection
from cdktn_provider_google.cloudbuildv2_repository import Cloudbuildv2Repository
from constructs import Construct

from dataplatform.constructs.service_account import WorkloadIdentityRef

BUILD_CONFIG = "workloads/etl/cloudbuild.yaml"
# Everything the image and its tests are built from (the Dockerfile copies the launcher's
# launch_request.py too): a change to any of them rebuilds the image.
BUILD_INPUTS = ["workloads/etl/**", "workloads/launcher/**", "workloads/tests/**", "workloads/__init__.py",
                "workloads/Pipfile", "workloads/Pipfile.lock", "workloads/pytest.ini"]


@dataclass(frozen=True)
class EtlBuildSpec:
    name: str
    trigger_name: str
    region: str
    repository: str  # owner/name
    branch: str
    app_installation_id: int
    oauth_token_version: str
    """`projects/<p>/secrets/<id>/versions/<n>`: a pinned version of the bootstrap's token secret."""
    identity: WorkloadIdentityRef
    image: str
    template_path: str
    require_approval: bool


class EtlBuild(Construct):
    def __init__(self, scope: Construct, id_: str, spec: EtlBuildSpec):
        super().__init__(scope, id_)
        self.connection = Cloudbuildv2Connection(
            self,
            "connection",
            name=spec.name,
            location=spec.region,
            github_config={
                "app_installation_id": spec.app_installation_id,
                "authorizer_credential": {"oauth_token_secret_version": spec.oauth_token_version},
            },
        )
        repo = Cloudbuildv2Repository(
            self,
            "repository",
            name=spec.repository.split("/")[1],
            location=spec.region,
            parent_connection=self.connection.name,
            remote_uri=f"https://github.com/{spec.repository}.git",
        )
        self.trigger = CloudbuildTrigger(
            self,
            "trigger",
            name=spec.trigger_name,
            location=spec.region,
            description=("Test, build and smoke-test the ETL image, then write the template spec"
                         + (" (each build waits for an approver)" if spec.require_approval else "")),
            repository_event_config={"repository": repo.id, "push": {"branch": f"^{spec.branch}$"}},
            filename=BUILD_CONFIG,
            included_files=BUILD_INPUTS,
            substitutions={"_IMAGE": spec.image, "_TEMPLATE_PATH": spec.template_path},
            service_account=spec.identity.resource_id,
            include_build_logs="INCLUDE_BUILD_LOGS_WITH_STATUS",
            approval_config={"approval_required": True} if spec.require_approval else None,
        )
