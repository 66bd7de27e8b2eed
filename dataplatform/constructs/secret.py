"""A Secret Manager secret whose value is added out of band, never in code or config."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.secret_manager_secret import (
    SecretManagerSecret,
    SecretManagerSecretReplication,
    SecretManagerSecretReplicationAuto,
)
from cdktn_provider_google.secret_manager_secret_iam_member import SecretManagerSecretIamMember
from constructs import Construct

from dataplatform.constructs.iam import Principal, ResourceIam


@dataclass(frozen=True)
class SecretSettings:
    secret_id: str
    purpose: str


class Secret(Construct, ResourceIam):
    """Only the container: `gcloud secrets versions add <id> --data-file=-` sets the value."""

    _iam_member_class = SecretManagerSecretIamMember

    def __init__(self, scope: Construct, id_: str, settings: SecretSettings):
        super().__init__(scope, id_)
        self.secret = SecretManagerSecret(
            self,
            "secret",
            secret_id=settings.secret_id,
            replication=SecretManagerSecretReplication(auto=SecretManagerSecretReplicationAuto()),
            deletion_protection=True,
        )
        self.secret.node.add_metadata("purpose", settings.purpose)
        self.secret_id = settings.secret_id

    def _iam_target(self):
        return {"secret_id": self.secret.id}

    def latest_version(self, project: str) -> str:
        return f"projects/{project}/secrets/{self.secret_id}/versions/latest"

    def grant_access(self, principal: Principal) -> None:
        """Read the secret's value (secretAccessor on this secret only)."""
        self.bind("roles/secretmanager.secretAccessor", principal)
