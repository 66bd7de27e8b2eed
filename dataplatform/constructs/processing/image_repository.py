"""The ETL image repository: Docker images of the Flex Template, old untagged ones cleaned up."""

from __future__ import annotations

from cdktn_provider_google.artifact_registry_repository import ArtifactRegistryRepository, ArtifactRegistryRepositoryCleanupPolicies
from cdktn_provider_google.artifact_registry_repository_iam_member import ArtifactRegistryRepositoryIamMember
from constructs import Construct

from dataplatform.constructs.iam import Principal, ResourceIam


class ImageRepository(Construct, ResourceIam):
    """Docker repository for the ETL's Flex Template image; old images are cleaned up."""

    _iam_member_class = ArtifactRegistryRepositoryIamMember

    def __init__(self, scope: Construct, id_: str, *, repository_id: str, region: str, project: str):
        super().__init__(scope, id_)
        self.repository = ArtifactRegistryRepository(
            self,
            "repository",
            repository_id=repository_id,
            location=region,
            format="DOCKER",
            description="ETL Flex Template images",
            docker_config={"immutable_tags": False},
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                ArtifactRegistryRepositoryCleanupPolicies(id="keep-recent", action="KEEP", most_recent_versions={"keep_count": 10}),
                ArtifactRegistryRepositoryCleanupPolicies(id="drop-old-untagged", action="DELETE",
                                                          condition={"tag_state": "UNTAGGED", "older_than": "2592000s"}),
            ],
        )
        self.image_base = f"{region}-docker.pkg.dev/{project}/{repository_id}"
        self._region = region

    def _iam_target(self):
        return {"repository": self.repository.name, "location": self._region}

    def grant_push(self, principal: Principal) -> None:
        self.bind("roles/artifactregistry.writer", principal)

    def grant_pull(self, principal: Principal) -> None:
        self.bind("roles/artifactregistry.reader", principal)
