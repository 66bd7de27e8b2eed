"""CI/CD resources: what Cloud Build refuses or runs with too much power."""

from __future__ import annotations

import re

from dataplatform.guardrails.compute import is_default_compute_sa
from dataplatform.guardrails.rule import ERROR, Target, computed, get, rule

_PINNED_VERSION = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/\d+$")
_SECRET_REFERENCE = re.compile(r"\$\{google_secret_manager_secret(_version)?\.")


@rule("GR-CI-001", ERROR, "A Cloud Build connection reads a pinned token version of a secret that exists before the apply.",
      "create the secret in the bootstrap stack and reference projects/<p>/secrets/<id>/versions/<n> (config "
      "cicd.oauth_token_secret_version): a version of a secret created in the same apply cannot exist yet, and the "
      "connection reads it when it is created", "google_cloudbuildv2_connection")
def connection_token_exists(t: Target):
    versions = [v for v in (get(t.attrs, "github_config.authorizer_credential.oauth_token_secret_version"),
                            get(t.attrs, "github_enterprise_config.authorizer_credential.user_token_secret_version"),
                            get(t.attrs, "gitlab_config.authorizer_credential.user_token_secret_version")) if v]
    for version in versions:
        if _SECRET_REFERENCE.search(str(version)):
            return f"token version {version!r} refers to a secret created in this stack"
        if not computed(version) and not _PINNED_VERSION.fullmatch(str(version)):
            return f"token version {version!r} is not a pinned projects/<p>/secrets/<id>/versions/<number>"
    return None


@rule("GR-CI-002", ERROR, "Build triggers run as a user-managed service account.",
      "set service_account to the build's own account (WORKLOADS['build']): without it builds run as the legacy "
      "Cloud Build account or, in new projects, the Compute Engine default account (Editor)", "google_cloudbuild_trigger")
def trigger_service_account(t: Target):
    account = t.attrs.get("service_account")
    if not account:
        return "no service_account: the build runs as a default account"
    return "runs as the Compute Engine default account" if is_default_compute_sa(account) else None


RULES = [connection_token_exists, trigger_service_account]
