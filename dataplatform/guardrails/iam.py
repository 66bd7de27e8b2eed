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
    """(role, members) of an IAM resource; a literal policy_data JSON is read too (a member without a role reads as role "")."""
    a = t.attrs
    if isinstance(a.get("role"), str) or "member" in a or "members" in a:
        yield a["role"] if isinstance(a.get("role"), str) else "", list(members(a))
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


_REPO_ID_PIN = re.compile(r"assertion\.repository_id\s*==\s*['\"]\d+['\"]")
_OWNER_ID_PIN = re.compile(r"assertion\.repository_owner_id\s*==\s*['\"]\d+['\"]")


@rule("GR-IAM-007", ERROR, "A GitHub OIDC provider pins the repository and its owner by numeric id.",
      "set attribute_condition = \"assertion.repository_id == '<id>' && assertion.repository_owner_id == '<id>'\" "
      "(config github.repository_id / owner_id; GithubCiIdentities does): a name pin is re-registrable after a "
      "repository is deleted or renamed, and no pin lets any GitHub repository mint tokens", "google_iam_workload_identity_pool_provider")
def github_provider_pins_repository(t: Target):
    if block(t.attrs.get("oidc")).get("issuer_uri") != GITHUB_ISSUER:
        return None
    condition = t.attrs.get("attribute_condition") or ""
    if computed(condition):
        return None
    missing = [what for what, pin in (("repository_id", _REPO_ID_PIN), ("repository_owner_id", _OWNER_ID_PIN))
               if not pin.search(condition)]
    if "||" in condition:
        return f"attribute_condition {condition!r} has an alternative (||) that can bypass the pins"
    return f"attribute_condition {condition!r} does not pin {' and '.join(missing)}" if missing else None


def _stack_of(t: Target) -> str:
    return t.path.split("/", 1)[0]


@rule("GR-IAM-008", ERROR, "Service accounts and grants on them (who may act as whom) live only in a bootstrap stack.",
      "add the account to WORKLOADS / the grant to act_as_grants() in dataplatform/constructs/workload_identities.py: "
      "the CI deployer, which applies the platform stack, holds no service-account admin role",
      "google_service_account", "google_service_account_iam_member", "google_service_account_iam_binding",
      "google_service_account_iam_policy")
def service_accounts_in_bootstrap(t: Target):
    stack = _stack_of(t)
    return None if stack.endswith("-bootstrap") or "/" not in t.path else f"{t.type} in stack {stack!r}"


ROLE_GRANTING_ROLES = frozenset({
    "roles/resourcemanager.projectIamAdmin", "roles/iam.securityAdmin", "roles/resourcemanager.folderIamAdmin",
    "roles/resourcemanager.organizationAdmin",
})
_GRANT_LIMIT = re.compile(r"modifiedGrantsByRole['\"]\s*,\s*\[\s*\]\s*\)\s*\.hasOnly\(\s*\[")


@rule("GR-IAM-009", ERROR, "A role that grants roles (projectIamAdmin, securityAdmin) is held only under a condition limiting the roles it may grant.",
      "add condition { expression = \"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([...])\" } "
      "listing the grantable roles (github_ci.DEPLOYER_GRANTABLE_ROLES); unconditioned it can grant itself owner", *ABOVE_SA)
def role_granting_roles_are_limited(t: Target):
    roles = sorted({role for role, _ in grants(t) if role in ROLE_GRANTING_ROLES})
    if not roles:
        return None
    expression = str(block(t.attrs.get("condition")).get("expression") or "")
    return None if _GRANT_LIMIT.search(expression) else f"grants {', '.join(roles)} without a modifiedGrantsByRole hasOnly condition"


SECRET_READING_ROLES = frozenset({"roles/secretmanager.admin", "roles/secretmanager.secretAccessor", "roles/owner", "roles/editor"})


@rule("GR-IAM-010", ERROR, "No project-wide role that reads secret values (secretmanager.admin, secretAccessor at project level).",
      "grant roles/secretmanager.secretAccessor on the one secret (Secret.grant_access, bootstrap stack); manage secrets with "
      "a custom role without secretmanager.versions.access", *ABOVE_SA)
def no_project_wide_secret_reads(t: Target):
    bad = sorted({role for role, _ in grants(t) if role in SECRET_READING_ROLES - BASIC_ROLES})
    return f"grants {', '.join(bad)} project-wide: every secret value becomes readable" if bad else None


@rule("GR-IAM-011", ERROR, "Impersonation is never granted to a whole workload identity pool.",
      "bind a principalSet of one attribute value (attribute.repository_id/<id>, attribute.deploy/<workflow>:environment:<env>)",
      *IAM_TYPES)
def no_whole_pool(t: Target):
    bad = sorted({m for role, ms in grants(t) if role in IMPERSONATION_ROLES for m in ms
                  if m.startswith("principalSet://") and m.rstrip("/").endswith("/*")})
    return f"grants impersonation to every identity of a pool: {', '.join(bad)}" if bad else None


RULES = [no_basic_roles, no_public_members, no_keys, impersonation_only_on_named_sas, no_authoritative_iam,
         project_grant_has_reason, github_provider_pins_repository, service_accounts_in_bootstrap,
         role_granting_roles_are_limited, no_project_wide_secret_reads, no_whole_pool]
