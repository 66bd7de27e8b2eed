"""Data: `terraform destroy` (or a replace) never takes business data with it."""

from __future__ import annotations

import json
import re

from dataplatform.config import clustering_problems, partitioning_problems
from dataplatform.guardrails.rule import ERROR, WARNING, Target, Unverified, block, blocks, computed, expect, get, is_true, rule


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


# ---------------------------------------------------------------- Dataplex data quality

DQ_RULE_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
ROW_LEVEL_EXPECTATIONS = ("non_null_expectation", "range_expectation", "regex_expectation", "set_expectation",
                          "row_condition_expectation")
IGNORE_NULL_EXPECTATIONS = ("range_expectation", "regex_expectation", "set_expectation", "uniqueness_expectation")


def _dq_rules(t: Target) -> list[dict]:
    return blocks(get(t.attrs, "data_quality_spec.rules"))


@rule("GR-DAT-006", ERROR, "Dataplex quality rule names are 1-63 letters, digits and hyphens, start with a letter, end with a letter or digit, and are unique in the scan.",
      "name rules with dataplatform.constructs.catalog.rule_name (column '_' becomes '-')", "google_dataplex_datascan")
def dq_rule_names(t: Target):
    names = [r.get("name") for r in _dq_rules(t) if r.get("name") is not None]
    bad = [n for n in names if not computed(n) and not DQ_RULE_NAME.fullmatch(str(n))]
    dupes = sorted({n for n in names if names.count(n) > 1})
    problems = [f"rule name {n!r} is invalid" for n in bad] + [f"rule name {n!r} is used twice" for n in dupes]
    return "; ".join(problems) or None


@rule("GR-DAT-007", ERROR, "Dataplex quality rules use threshold only on row-level expectations (0-1), ignore_null only where Dataplex accepts it, and sample 0-100 %.",
      "drop threshold from table/aggregate rules and ignore_null from non-null/row-condition/table rules; "
      "sampling_percent in [0, 100] (0 and 100 both scan everything)", "google_dataplex_datascan")
def dq_rule_fields(t: Target):
    problems = []
    for r in _dq_rules(t):
        kinds = [k for k in r if k.endswith("_expectation") and r[k] is not None]
        name = r.get("name", "?")
        threshold = r.get("threshold")
        if threshold is not None and not computed(threshold):
            if not any(k in ROW_LEVEL_EXPECTATIONS for k in kinds):
                problems.append(f"rule {name!r}: threshold on a {'/'.join(kinds) or 'rule without expectation'}")
            elif not 0 <= float(threshold) <= 1:
                problems.append(f"rule {name!r}: threshold {threshold} outside [0, 1]")
        if is_true(r.get("ignore_null")) and not any(k in IGNORE_NULL_EXPECTATIONS for k in kinds):
            problems.append(f"rule {name!r}: ignore_null on a {'/'.join(kinds)}")
    for spec in ("data_quality_spec", "data_profile_spec"):
        sampling = get(t.attrs, f"{spec}.sampling_percent")
        if sampling is not None and not computed(sampling) and not 0 <= float(sampling) <= 100:
            problems.append(f"{spec}.sampling_percent {sampling} outside [0, 100]")
    return "; ".join(problems) or None


# ---------------------------------------------------------------- BigQuery partitioning and clustering


def _schema_types(t: Target) -> dict[str, str] | None:
    schema = t.attrs.get("schema")
    if not isinstance(schema, str) or computed(schema):
        return None
    try:
        return {f["name"]: str(f.get("type", "")).upper() for f in json.loads(schema) if isinstance(f, dict) and "name" in f}
    except (ValueError, TypeError):
        return None


@rule("GR-DAT-008", ERROR, "A column-partitioned table partitions on a TIMESTAMP, DATE or DATETIME column of its schema (HOUR needs a TIMESTAMP/DATETIME).",
      "set the pipeline's partition_by to its event-time column (config), or drop it for ingestion-time partitions",
      "google_bigquery_table")
def partition_column(t: Target):
    partitioning = block(t.attrs.get("time_partitioning"))
    column = partitioning.get("field")
    if not column or computed(column):
        return None
    types = _schema_types(t)
    if types is None:
        return Unverified(f"time_partitioning.field {column!r}: schema not readable at synth")
    return "; ".join(partitioning_problems(column, str(partitioning.get("type", "DAY")), types)) or None


@rule("GR-DAT-009", ERROR, "A table clusters on at most 4 schema columns of clusterable types (not FLOAT).",
      "fix the pipeline's cluster_by (config): up to four columns, none FLOAT", "google_bigquery_table")
def clustering_columns(t: Target):
    columns = t.attrs.get("clustering")
    if not columns or computed(columns):
        return None
    types = _schema_types(t)
    if types is None:
        return Unverified("clustering: schema not readable at synth")
    return "; ".join(clustering_problems([str(c) for c in columns], types)) or None


# ---------------------------------------------------------------- Secret Manager


@rule("GR-DAT-010", ERROR, "Secrets replicate to named regions only (user-managed replication).",
      "set replication { user_managed { replicas { location = <the platform's region> } } }: automatic replication "
      "stores the value anywhere, which a resource-location org policy (gcp.resourceLocations) refuses",
      "google_secret_manager_secret")
def secret_replication(t: Target):
    replication = block(t.attrs.get("replication"))
    if replication.get("auto") is not None or not blocks(block(replication.get("user_managed")).get("replicas")):
        return "replication is automatic (any region)"
    return None


RULES = [table_deletion_protection, dataset_keeps_contents, dataset_prevent_destroy, data_bucket_prevent_destroy,
         secret_deletion_protection, dq_rule_names, dq_rule_fields, partition_column, clustering_columns, secret_replication]
