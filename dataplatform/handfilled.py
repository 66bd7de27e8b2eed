"""Secrets whose values are added by hand (no jsii: preflight and `make deploy` read this too).

The bootstrap stack creates each container and decides who may read it; an admin adds the value
(`gcloud secrets versions add <id> --data-file=-`) before the platform is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataplatform.naming import Namer


@dataclass(frozen=True)
class HandFilledSecret:
    component: str
    """Name component: the secret id is `<prefix>-<env>-<component>`."""
    purpose: str
    how_to_fill: str
    """What the value is and where to get it (printed by `make deploy` / `make preflight`)."""


HAND_FILLED_SECRETS: dict[str, HandFilledSecret] = {
    "mail-api-key": HandFilledSecret(
        "sendgrid-api-key", "SendGrid API key for quarantine alert mails",
        "a SendGrid API key with Mail Send permission (read by the ETL at run time)"),
    "github-oauth-token": HandFilledSecret(
        "github-oauth-token", "GitHub token of the Cloud Build connection",
        "a GitHub personal access token (classic: repo, read:user; or fine-grained with read access to the repository) "
        "of an account that installed the Cloud Build GitHub App; the Cloud Build connection reads it when it is created"),
}


def secret_id(namer: Namer, key: str) -> str:
    return namer.secret(HAND_FILLED_SECRETS[key].component)
