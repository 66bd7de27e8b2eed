"""IAM: least privilege, no public principals, no keys, impersonation only on named SAs."""

from __future__ import annotations

import json
import re
from typing import Iterator

from dataplatform.guardrails.rule import ERROR, WARNING, Target, block, computed, members, rule

BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
IMPERSONATION_ROLES = frozenset({
    "roles/iam.serviceAccountUser",  # actAs
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.serviceAccountOpenIdTokenCreator",
    "roles/iam.workloadIdentityUser",
})
IAM_TYPES = ("google_*_iam_member", "google_*_iam_binding", "google_*_iam_policy")
ABOVE_SA = tuple(f"google_{level}_iam_{kind}" for level in ("project", "folder", "organization")
                 for kind in ("member", "binding", "policy"))
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def grants(t: Target) -> Iterator[tuple[str, list[str]]]:
    """(role, members) of an IAM resource; a literal policy_data JSON is read too."""
    a = t.attrs
    if isinstance(a.get("role"), str):
        yield a["role"], list(members(a))
    policy = a.get("policy_data")
    if isinstance(policy, str) and not computed(policy):
        try:
            bindings = json.loads(policy).get("bindings", [])
        except (ValueError, AttributeError):
            bindings = []
        for b in bindings:
            yield b.get("role", ""), list(b.get("members", []))


@rule("GR-IAM-001", ERROR, "No basic roles (owner/editor/viewer) anywhere.",
      "grant a predefined role on the resource itself (bucket.grant_read, warehouse.grant_write, ...)", *IAM_TYPES)
def no_basic_roles(t: Target):
    bad = sorted({role for role, _ in grants(t) if role in BASIC_ROLES})
    return f"grants basic role {', '.join(bad)}" if bad else None


@rule("GR-IAM-002", ERROR, "No public principals (allUsers / allAuthenticatedUsers).",
      "grant to a named service account or group instead", *IAM_TYPES,
      "google_bigquery_dataset", "google_bigquery_dataset_access")
def no_public_members(t: Target):
    found = {m for _, ms in grants(t) for m in ms if m in PUBLIC_MEMBERS}
    accesses = t.attrs.get("access") if t.type == "google_bigquery_dataset" else [t.attrs]
    for access in accesses if isinstance(accesses, list) else []:
        access = block(access)
        found |= {access.get(k) for k in ("special_group", "iam_member")} & PUBLIC_MEMBERS
    return f"grants access to {', '.join(sorted(found))}" if found else None


@rule("GR-IAM-003", ERROR, "No long-lived keys: service account keys and HMAC keys are never created.",
      "use Workload Identity Federation (CI) or the workload's attached service account",
      "google_service_account_key", "google_storage_hmac_key")
def no_keys(t: Target):
    return f"{t.type} creates a long-lived credential"


@rule("GR-IAM-004", ERROR, "actAs / token creation is granted on a named service account, never project/folder/org-wide.",
      "grant it on the one service account: workload.grant_act_as(principal) (google_service_account_iam_member)",
      *ABOVE_SA)
def impersonation_only_on_named_sas(t: Target):
    bad = sorted({role for role, _ in grants(t) if role in IMPERSONATION_ROLES})
    level = t.type.split("_")[1]
    return f"grants {', '.join(bad)} at {level} level: every service account becomes usable" if bad else None


@rule("GR-IAM-005", ERROR, "Project/folder/org IAM is additive (members), never authoritative (binding/policy).",
      "use google_project_iam_member (grant_project_roles); bindings and policies erase grants made elsewhere, "
      "including Google's service agents", *(t for t in ABOVE_SA if not t.endswith("_member")))
def no_authoritative_iam(t: Target):
    return f"{t.type} replaces every other grant of {'its role' if t.type.endswith('binding') else 'the whole policy'}"


@rule("GR-IAM-006", WARNING, "A project-level grant says why no narrower scope exists.",
      "grant through grant_project_roles(..., {role: reason}) which records the reason", "google_project_iam_member")
def project_grant_has_reason(t: Target):
    return None if t.metadata.get("project_scope_reason") else f"project-level {t.attrs.get('role')} has no recorded reason"


_PINS = (
    re.compile(r"assertion\.repository\s*==\s*['\"][\w.-]+/[\w.-]+['\"]"),
    re.compile(r"assertion\.repository_id\s*==\s*['\"]\d+['\"]"),
    re.compile(r"assertion\.sub\s*==\s*['\"]repo:[\w.-]+/[\w.-]+:[^'\"*]+['\"]"),
)


@rule("GR-IAM-007", ERROR, "A GitHub OIDC provider pins the repository in attribute_condition.",
      "set attribute_condition = \"assertion.repository == '<owner>/<name>'\" (GithubCiIdentities does); "
      "without it any GitHub repository can mint tokens from the pool", "google_iam_workload_identity_pool_provider")
def github_provider_pins_repository(t: Target):
    if block(t.attrs.get("oidc")).get("issuer_uri") != GITHUB_ISSUER:
        return None
    condition = t.attrs.get("attribute_condition") or ""
    if computed(condition):
        return None
    return None if any(p.search(condition) for p in _PINS) else f"attribute_condition {condition!r} does not pin a repository"


RULES = [no_basic_roles, no_public_members, no_keys, impersonation_only_on_named_sas, no_authoritative_iam,
         project_grant_has_reason, github_provider_pins_repository]
