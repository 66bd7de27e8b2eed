"""A workload's own identity: one service account per workload, never a key.

The accounts and every grant *on* them (who may act as whom) live in the bootstrap stack,
applied by a project owner: the CI deployer then needs no service-account admin role, which
would let it grant itself `actAs` on any account of the project (including the Compute
Engine default account). The platform stack refers to them by name (`WorkloadIdentityRef`).
"""

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
    """A service account (bootstrap stack); others may be granted `actAs` on exactly this one."""

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


class BootstrapOnly(RuntimeError):
    """Raised when the platform stack tries to change who may act as a workload identity."""


@dataclass(frozen=True)
class WorkloadIdentityRef:
    """A workload identity created by the bootstrap stack, as the platform stack names it."""

    key: str
    email: str
    project: str

    @property
    def principal(self) -> Principal:
        return Principal.service_account(self.key, self.email)

    @property
    def resource_id(self) -> str:
        return f"projects/{self.project}/serviceAccounts/{self.email}"

    def grant_act_as(self, principal: Principal) -> None:
        raise BootstrapOnly(
            f"actAs on {self.key} is granted by the bootstrap stack (the CI deployer holds no service-account admin role): "
            "add it to act_as_grants() in dataplatform/constructs/workload_identities.py")

    def bind(self, role: str, principal: Principal, **_: object) -> None:
        raise BootstrapOnly(
            f"grants on the service account {self.key} ({role} to {principal.key}) are made by the bootstrap stack: "
            "add it to act_as_grants() in dataplatform/constructs/workload_identities.py")
