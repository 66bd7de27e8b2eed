"""One IAM interface for every construct.

A grant is always made *on the shared resource* (AWS CDK's `bucket.grant_read(role)`),
to a `Principal`, through `ResourceIam.bind`. Construct ids derive from role and
principal key, so a grant made twice fails loudly instead of silently duplicating.

Every grant made through this module is also written to the stack's `GrantLedger`, so
`dataplatform.ordering` can make each consumer (function, cluster, environment, ...)
depend on the grants to the identities it runs as: Terraform would otherwise create
both at once and the consumer would race its own permissions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from cdktn import TerraformResource
from constructs import Construct

from dataplatform import comments, construct_tree
from dataplatform.guardrails.iam import BASIC_ROLES  # one definition: the rule's (GR-IAM-001)


def _refuse_basic(role: str) -> None:
    if role in BASIC_ROLES:
        raise ValueError(f"basic role {role} is never granted; pick a predefined role")


@dataclass(frozen=True)
class Principal:
    """Who gets access: a stable `key` (for construct ids) and the IAM `member` string."""

    key: str
    member: str

    @staticmethod
    def group(key: str, email: str) -> "Principal":
        return Principal(key, f"group:{email}")

    @staticmethod
    def service_account(key: str, email: str) -> "Principal":
        return Principal(key, f"serviceAccount:{email}")


@dataclass(frozen=True)
class Grant:
    member: str
    resource: TerraformResource
    on_owner: bool = False
    """Made on the construct it is a child of (a resource-level grant; False for project-level
    grants): a grant on a consumer itself (e.g. who may use a cluster) comes after the consumer,
    never before. The owner's path is read from the synthesized JSON, not here (a jsii round trip)."""


@dataclass
class GrantLedger:
    """Every grant of one stack, in creation order (EnvironmentStack keeps one)."""

    grants: list[Grant] = field(default_factory=list)

    def record(self, member: str, resource: TerraformResource, *, on_owner: bool = False) -> None:
        """`on_owner`: `resource` is a child of the construct it grants access to."""
        self.grants.append(Grant(member, resource, on_owner))

    def for_member(self, member: str) -> list[Grant]:
        return [g for g in self.grants if g.member == member]


def ledger_of(scope: Construct) -> GrantLedger | None:
    """The ledger of the stack holding `scope` (None in plain test stacks)."""
    return getattr(construct_tree.stack_of(scope), "grant_ledger", None)


def _slug(role: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", role.rsplit("/", 1)[-1]).strip("-").lower()


def grant_member(scope: Construct, member_class: Callable[..., Any], construct_id: str, role: str, principal: Principal, *,
                 on_owner: bool = False, **target: Any) -> Any:
    """The one way an IAM member is made: refuse basic roles, create `member_class` under `scope`
    (`target`: the kwargs naming what it grants on), record it in the stack's grant ledger.
    `on_owner`: `scope` is the construct the grant is made on (a resource-level grant)."""
    _refuse_basic(role)
    member = member_class(scope, construct_id, role=role, member=principal.member, **target)
    ledger = ledger_of(scope)
    if ledger is not None:
        ledger.record(principal.member, member, on_owner=on_owner)
    return member


@dataclass(frozen=True)
class IamCondition:
    """An IAM condition (CEL `expression`) on one member: the same block on every *_iam_member type."""

    title: str
    expression: str
    description: str = ""

    def as_block(self) -> dict[str, str]:
        return {"title": self.title, "expression": self.expression, **({"description": self.description} if self.description else {})}


class ResourceIam:
    """Mixin for constructs owning a resource that takes resource-level IAM members.

    Subclasses set `_iam_member_class` (e.g. StorageBucketIamMember) and implement
    `_iam_target()` returning the kwargs that point a member at the resource.
    """

    _iam_member_class: Callable[..., Any]

    def _iam_target(self) -> dict[str, Any]:
        raise NotImplementedError

    def bind(self, role: str, principal: Principal, *, scope_suffix: str = "", condition: IamCondition | None = None) -> Any:
        """Grant `role` on this resource to `principal` (under `condition`, if given); returns the member."""
        _refuse_basic(role)
        if not isinstance(self, Construct):
            raise TypeError(f"ResourceIam is a mixin for constructs, not {type(self).__name__}")
        target = self.__dict__.get("_iam_target_kwargs")
        if target is None:  # tokens of the resource, read once per construct (each read is a jsii round trip)
            target = self.__dict__["_iam_target_kwargs"] = self._iam_target()
        if condition is not None:
            target = {**target, "condition": condition.as_block()}
            scope_suffix += f"-{_slug(condition.title)}"
        return grant_member(self, self._iam_member_class, f"iam-{_slug(role)}-{principal.key}{scope_suffix}", role, principal,
                            on_owner=True, **target)


def grant_project_member(scope: Construct, construct_id: str, project: str, principal: Principal, role: str, reason: str,
                         **extra: Any) -> TerraformResource:
    """One project-level member (`extra`: e.g. its condition), with the reason it cannot be resource-scoped
    kept as a "//" comment in cdk.tf.json: reviewers, checkov mapping and the guardrails all read it there."""
    from cdktn_provider_google.project_iam_member import ProjectIamMember

    _refuse_basic(role)  # before the reason: a basic role is refused whatever the reason
    if not reason:
        raise ValueError(f"project-level grant of {role} to {principal.key} needs a reason")
    member = grant_member(scope, ProjectIamMember, construct_id, role, principal, project=project, **extra)
    comments.comment(member, "project_scope_reason", reason)
    return member


def grant_project_roles(scope: Construct, project: str, principal: Principal, roles: dict[str, str]) -> list[TerraformResource]:
    """Project-level roles, only for permissions that have no narrower resource scope.

    `roles` maps role -> why it cannot be resource-scoped; the reason is kept as the
    construct's metadata so reviewers and the guardrail report can read it.
    """
    return [grant_project_member(scope, f"project-{_slug(role)}-{principal.key}", project, principal, role, reason)
            for role, reason in roles.items()]


def grant_project_role_if(scope: Construct, project: str, principal: Principal, role: str, *, title: str,
                          expression: str, reason: str) -> TerraformResource:
    """A project-level role under an IAM condition (e.g. only on resources whose name starts with ...)."""
    from cdktn_provider_google.project_iam_member import ProjectIamMemberCondition

    return grant_project_member(scope, f"{title}-{principal.key}", project, principal, role, reason,
                                condition=ProjectIamMemberCondition(title=title, expression=expression, description=reason[:256]))


@dataclass(frozen=True)
class ServiceAgentSpec:
    domain: str
    api: str
    default_role: str | None
    """The role Google grants the agent when the service creates it on first use; an agent created
    on request (bootstrap's ServiceAgents) gets no role, so the bootstrap grants this one itself."""


SERVICE_AGENTS: dict[str, ServiceAgentSpec] = {
    # GCS publishes object events for Eventarc (pubsub.publisher, granted by the platform); no default role.
    "storage": ServiceAgentSpec("gs-project-accounts.iam.gserviceaccount.com", "storage.googleapis.com", None),
    "pubsub": ServiceAgentSpec("gcp-sa-pubsub.iam.gserviceaccount.com", "pubsub.googleapis.com", "roles/pubsub.serviceAgent"),
    "eventarc": ServiceAgentSpec("gcp-sa-eventarc.iam.gserviceaccount.com", "eventarc.googleapis.com", "roles/eventarc.serviceAgent"),
    "composer": ServiceAgentSpec("cloudcomposer-accounts.iam.gserviceaccount.com", "composer.googleapis.com", "roles/composer.serviceAgent"),
    "cloudbuild": ServiceAgentSpec("gcp-sa-cloudbuild.iam.gserviceaccount.com", "cloudbuild.googleapis.com", "roles/cloudbuild.serviceAgent"),
    "dataplex": ServiceAgentSpec("gcp-sa-dataplex.iam.gserviceaccount.com", "dataplex.googleapis.com", "roles/dataplex.serviceAgent"),
}


def service_agent_email(service: str, project_number: str) -> str:
    return f"service-{project_number}@{SERVICE_AGENTS[service].domain}"


def service_agent(service: str, project_number: str) -> Principal:
    """A Google-managed service agent, named from the project number (no API call at plan).

    The bootstrap stack creates every agent in SERVICE_AGENTS explicitly (some exist only after
    first use), so by the time the platform stack grants one a role, it exists. The email is the
    documented `service-<number>@<domain>` form: the "offline value" that keeps plans offline-able.
    """
    return Principal(f"{service}-agent", f"serviceAccount:{service_agent_email(service, project_number)}")
