"""Secret Manager secrets whose values are added by hand, never in code, config or state.

The containers and who may read them live in the bootstrap stack (a project owner applies
it): so the values can be filled before anything that reads them is applied (a Cloud Build
connection reads its token version at create time), and the CI deployer needs no Secret
Manager role at all (an admin role would let it read every value). The platform stack names
them with `SecretRef`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.secret_manager_secret import (
    SecretManagerSecret,
    SecretManagerSecretReplication,
    SecretManagerSecretReplicationUserManaged,
    SecretManagerSecretReplicationUserManagedReplicas,
)
from cdktn_provider_google.secret_manager_secret_iam_member import SecretManagerSecretIamMember
from constructs import Construct

from dataplatform.constructs.iam import Principal, ResourceIam
from dataplatform.handfilled import HAND_FILLED_SECRETS, HandFilledSecret, secret_id  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class SecretSettings:
    secret_id: str
    region: str
    """Replicas stay in the platform's region (user-managed replication): automatic replication
    stores the value in any region, which a resource-location org policy refuses."""


class Secret(Construct, ResourceIam):
    """Only the container: `gcloud secrets versions add <id> --data-file=-` sets the value."""

    _iam_member_class = SecretManagerSecretIamMember

    def __init__(self, scope: Construct, id_: str, settings: SecretSettings):
        super().__init__(scope, id_)
        self.secret = SecretManagerSecret(
            self,
            "secret",
            secret_id=settings.secret_id,
            replication=SecretManagerSecretReplication(user_managed=SecretManagerSecretReplicationUserManaged(
                replicas=[SecretManagerSecretReplicationUserManagedReplicas(location=settings.region)])),
            deletion_protection=True,
        )
        self.secret_id = settings.secret_id

    def _iam_target(self):
        return {"secret_id": self.secret.id}

    def latest_version(self, project: str) -> str:
        return f"projects/{project}/secrets/{self.secret_id}/versions/latest"

    def grant_access(self, principal: Principal):
        """Read the secret's value (secretAccessor on this secret only)."""
        return self.bind("roles/secretmanager.secretAccessor", principal)


@dataclass(frozen=True)
class SecretRef:
    """A bootstrap secret as the platform stack names it (no resource, no IAM)."""

    project: str
    secret_id: str

    def latest_version(self, project: str | None = None) -> str:
        return f"projects/{project or self.project}/secrets/{self.secret_id}/versions/latest"

    def version(self, number: int) -> str:
        return f"projects/{self.project}/secrets/{self.secret_id}/versions/{number}"

    def grant_access(self, principal: Principal) -> None:
        raise RuntimeError(f"who may read {self.secret_id} is decided by the bootstrap stack (the CI deployer holds no "
                           "Secret Manager role): add the reader in dataplatform/stacks/bootstrap.py")
