"""Names: values GCP would reject at apply time are refused at synth (dataplatform.naming rules)."""

from __future__ import annotations

from dataplatform import naming
from dataplatform.guardrails.rule import ERROR, Target, computed, rule


def _name_rule(id_: str, kind: str, attribute: str, *types: str):
    @rule(id_, ERROR, f"{', '.join(types)} {attribute} is a valid {kind} name.",
          f"use a Namer (dataplatform.naming): {naming.describe(kind)}", *types)
    def check(t: Target):
        value = t.attrs.get(attribute)
        if value is None or computed(value):
            return None
        return None if isinstance(value, str) and naming.is_valid(kind, value) else \
            f"{attribute} {value!r} is invalid: expected {naming.describe(kind)}"

    return check


RULES = [
    _name_rule("GR-NAM-001", "bucket", "name", "google_storage_bucket"),
    _name_rule("GR-NAM-002", "service_account", "account_id", "google_service_account"),
    _name_rule("GR-NAM-003", "dataset", "dataset_id", "google_bigquery_dataset"),
    _name_rule("GR-NAM-004", "table", "table_id", "google_bigquery_table"),
    _name_rule("GR-NAM-005", "resource", "name", "google_compute_network", "google_compute_subnetwork",
               "google_compute_firewall", "google_compute_router", "google_compute_router_nat",
               "google_compute_instance", "google_compute_instance_template"),
    _name_rule("GR-NAM-006", "secret", "secret_id", "google_secret_manager_secret"),
    _name_rule("GR-NAM-007", "custom_role", "role_id", "google_project_iam_custom_role"),
]
