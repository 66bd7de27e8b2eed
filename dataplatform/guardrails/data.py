"""Data: `terraform destroy` (or a replace) never takes business data with it."""

from __future__ import annotations

from dataplatform.guardrails.rule import ERROR, WARNING, Target, block, blocks, expect, get, is_true, rule


def tiers_objects(attrs: dict) -> bool:
    """A data bucket: objects are kept long enough to move to colder storage classes."""
    return any(block(r.get("action")).get("type") == "SetStorageClass" for r in blocks(attrs.get("lifecycle_rule")))


@rule("GR-DAT-001", ERROR, "BigQuery tables keep deletion protection.",
      "drop deletion_protection or set it to true (Warehouse does)", "google_bigquery_table")
def table_deletion_protection(t: Target):
    return expect(t.attrs.get("deletion_protection", True), lambda v: v is not False and str(v).lower() != "false",
                  "deletion_protection is false")


@rule("GR-DAT-002", ERROR, "Destroying a dataset never deletes its tables.",
      "set delete_contents_on_destroy = false", "google_bigquery_dataset")
def dataset_keeps_contents(t: Target):
    return expect(t.attrs.get("delete_contents_on_destroy", False), lambda v: not is_true(v), "delete_contents_on_destroy is true")


@rule("GR-DAT-003", ERROR, "Datasets carry lifecycle prevent_destroy.",
      "pass lifecycle=TerraformResourceLifecycle(prevent_destroy=True)", "google_bigquery_dataset")
def dataset_prevent_destroy(t: Target):
    return expect(get(t.attrs, "lifecycle.prevent_destroy"), is_true, "lifecycle.prevent_destroy is not true")


@rule("GR-DAT-004", ERROR, "Data buckets (objects tiered to colder classes) carry lifecycle prevent_destroy.",
      "pass lifecycle=TerraformResourceLifecycle(prevent_destroy=True) (LakeBucket does for data kinds)",
      "google_storage_bucket")
def data_bucket_prevent_destroy(t: Target):
    if not tiers_objects(t.attrs):
        return None
    return expect(get(t.attrs, "lifecycle.prevent_destroy"), is_true, "data bucket without lifecycle.prevent_destroy")


@rule("GR-DAT-005", WARNING, "Secrets keep deletion protection (the value lives only there).",
      "set deletion_protection = true (Secret does)", "google_secret_manager_secret")
def secret_deletion_protection(t: Target):
    return None if is_true(t.attrs.get("deletion_protection")) else "deletion_protection is not true"


RULES = [table_deletion_protection, dataset_keeps_contents, dataset_prevent_destroy, data_bucket_prevent_destroy,
         secret_deletion_protection]
