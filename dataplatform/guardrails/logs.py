"""Audit logs: Data Access logs, once enabled, cover every kind of access and everyone."""

from __future__ import annotations

from dataplatform.guardrails.rule import ERROR, Target, blocks, rule

LOG_TYPES = ("ADMIN_READ", "DATA_READ", "DATA_WRITE")


@rule("GR-LOG-001", ERROR, "An audit config logs ADMIN_READ, DATA_READ and DATA_WRITE and exempts nobody.",
      "list the three log types without exempted_members (dataplatform/constructs/audit_logs.py): an exempted "
      "member's reads of secrets or objects leave no trail", "google_project_iam_audit_config",
      "google_folder_iam_audit_config", "google_organization_iam_audit_config")
def audit_config_complete(t: Target):
    configs = blocks(t.attrs.get("audit_log_config"))
    present = {c.get("log_type") for c in configs}
    missing = [lt for lt in LOG_TYPES if lt not in present]
    exempted = sorted({m for c in configs for m in c.get("exempted_members") or []})
    problems = []
    if missing:
        problems.append(f"{t.attrs.get('service')}: no {', '.join(missing)} logs")
    if exempted:
        problems.append(f"exempts {', '.join(exempted)}")
    return "; ".join(problems) or None


RULES = [audit_config_complete]
