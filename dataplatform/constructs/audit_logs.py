"""Data Access audit logs: who read which object, which secret value, which token.

Off by default for every service but BigQuery. Admin Activity logs are always on; ADMIN_READ
(reads of configuration and IAM policies) and DATA_READ/DATA_WRITE are enabled here for the
services whose reads matter: object reads, secret value reads (AccessSecretVersion), and the
token exchanges and impersonations of the CI identities (STS, IAM credentials, IAM).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.project_iam_audit_config import ProjectIamAuditConfig, ProjectIamAuditConfigAuditLogConfig
from constructs import Construct

from dataplatform import comments

LOG_TYPES = ("ADMIN_READ", "DATA_READ", "DATA_WRITE")

AUDITED_SERVICES: dict[str, str] = {
    "storage.googleapis.com": "who read or wrote which object of the lake and the state bucket",
    "secretmanager.googleapis.com": "every read of a secret value (AccessSecretVersion)",
    "sts.googleapis.com": "every token exchange of a GitHub workflow (Workload Identity Federation)",
    "iamcredentials.googleapis.com": "every short-lived token minted for a service account (impersonation)",
    "iam.googleapis.com": "reads of service accounts, their keys and policies",
}


@dataclass(frozen=True)
class AuditLogsSettings:
    project: str
    services: tuple[str, ...] = tuple(AUDITED_SERVICES)


class AuditLogs(Construct):
    def __init__(self, scope: Construct, id_: str, settings: AuditLogsSettings):
        super().__init__(scope, id_)
        for service in settings.services:
            config = ProjectIamAuditConfig(self, service.split(".")[0], project=settings.project, service=service,
                                           audit_log_config=[ProjectIamAuditConfigAuditLogConfig(log_type=t) for t in LOG_TYPES])
            comments.comment(config, "audit_reason", AUDITED_SERVICES.get(service, ""))
