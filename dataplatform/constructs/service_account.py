"""A workload's own identity: one service account per workload, never a key."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.service_account import ServiceAccount
from cdktn_provider_google.service_account_iam_member import ServiceAccountIamMember
from constructs import Construct

from dataplatform.constructs.iam import Principal, ResourceIam


@dataclass(frozen=True)
class WorkloadIdentitySettings:
    account_id: str
    purpose: str


class WorkloadIdentity(Construct, ResourceIam):
    """A service account; others may be granted `actAs` on exactly this one."""

    _iam_member_class = ServiceAccountIamMember

    def __init__(self, scope: Construct, id_: str, settings: WorkloadIdentitySettings):
        super().__init__(scope, id_)
        self.key = id_
        self.account = ServiceAccount(
            self,
            "sa",
            account_id=settings.account_id,
            display_name=f"{settings.account_id} ({settings.purpose})"[:100],
            description=settings.purpose,
        )
        # Tokens are fixed once the resource exists: read them once (each read is a jsii round trip).
        self.email: str = self.account.email
        self.principal = Principal(self.key, f"serviceAccount:{self.email}")

    def _iam_target(self):
        return {"service_account_id": self.account.name}

    @property
    def resource_id(self) -> str:
        """`projects/<p>/serviceAccounts/<email>`, the form build and function configs take."""
        return self.account.id

    def grant_act_as(self, principal: Principal) -> None:
        """Let `principal` attach this SA to a job or resource (iam.serviceAccountUser on this SA only)."""
        self.bind("roles/iam.serviceAccountUser", principal)
