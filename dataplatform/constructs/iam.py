"""One IAM interface for every construct.

A grant is always made *on the shared resource* (AWS CDK's `bucket.grant_read(role)`),
to a `Principal`, through `ResourceIam.bind`. Construct ids derive from role and
principal key, so a grant made twice fails loudly instead of silently duplicating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from constructs import Construct

BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})


@dataclass(frozen=True)
class Principal:
    """Who gets access: a stable `key` (for construct ids) and the IAM `member` string."""

    key: str
    member: str

    @staticmethod
    def group(key: str, email: str) -> "Principal":
        return Principal(key, f"group:{email}")


def _slug(role: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", role.rsplit("/", 1)[-1]).strip("-").lower()


class ResourceIam:
    """Mixin for constructs owning a resource that takes resource-level IAM members.

    Subclasses set `_iam_member_class` (e.g. StorageBucketIamMember) and implement
    `_iam_target()` returning the kwargs that point a member at the resource.
    """

    _iam_member_class: Callable[..., Any]

    def _iam_target(self) -> dict[str, Any]:
        raise NotImplementedError

    def bind(self, role: str, principal: Principal, *, scope_suffix: str = "") -> Any:
        if role in BASIC_ROLES:
            raise ValueError(f"basic role {role} is never granted; pick a predefined role")
        assert isinstance(self, Construct)
        construct_id = f"iam-{_slug(role)}-{principal.key}{scope_suffix}"
        return self._iam_member_class(self, construct_id, role=role, member=principal.member, **self._iam_target())


def grant_project_roles(scope: Construct, project: str, principal: Principal, roles: dict[str, str]) -> None:
    """Project-level roles, only for permissions that have no narrower resource scope.

    `roles` maps role -> why it cannot be resource-scoped; the reason is kept as the
    construct's metadata so reviewers and the guardrail report can read it.
    """
    from cdktn_provider_google.project_iam_member import ProjectIamMember

    for role, reason in roles.items():
        if role in BASIC_ROLES:
            raise ValueError(f"basic role {role} is never granted; pick a predefined role")
        if not reason:
            raise ValueError(f"project-level grant of {role} to {principal.key} needs a reason")
        member = ProjectIamMember(scope, f"project-{_slug(role)}-{principal.key}", project=project, role=role, member=principal.member)
        # A "//" comment in cdk.tf.json: reviewers, checkov mapping and the guardrails all read it there.
        member.add_override("//.project_scope_reason", reason)


_AGENT_DOMAINS = {
    "storage": "gs-project-accounts.iam.gserviceaccount.com",
    "cloudbuild": "gcp-sa-cloudbuild.iam.gserviceaccount.com",
    "composer": "cloudcomposer-accounts.iam.gserviceaccount.com",
    "pubsub": "gcp-sa-pubsub.iam.gserviceaccount.com",
    "dataplex": "gcp-sa-dataplex.iam.gserviceaccount.com",
}


def service_agent(service: str, project_number: str) -> Principal:
    """A Google-managed service agent, named from the project number (no API call at plan)."""
    return Principal(f"{service}-agent", f"serviceAccount:service-{project_number}@{_AGENT_DOMAINS[service]}")
