"""Storage: lake buckets are private, uniform, aged by lifecycle rules and never force-destroyed."""

from __future__ import annotations

from dataplatform.guardrails.rule import ERROR, WARNING, Target, as_int, block, blocks, computed, expect, get, is_true, rule

BUCKET = "google_storage_bucket"

_NONCURRENT_ONLY = ("days_since_noncurrent_time", "noncurrent_time_before", "num_newer_versions")


def live_objects_expire(attrs: dict) -> bool:
    """True for scratch buckets: a Delete rule removes live objects (not only old versions)."""
    for r in blocks(attrs.get("lifecycle_rule")):
        condition = block(r.get("condition"))
        if block(r.get("action")).get("type") != "Delete":
            continue
        if condition.get("with_state") == "ARCHIVED" or any(k in condition for k in _NONCURRENT_ONLY):
            continue
        return True
    return False


@rule("GR-STO-001", ERROR, "Buckets use uniform bucket-level access (no object ACLs).",
      "set uniform_bucket_level_access = true (LakeBucket does)", BUCKET)
def uniform_access(t: Target):
    return expect(t.attrs.get("uniform_bucket_level_access"), is_true, "uniform_bucket_level_access is not true")


@rule("GR-STO-002", ERROR, "Buckets enforce public access prevention.",
      'set public_access_prevention = "enforced" (LakeBucket does)', BUCKET)
def public_access_prevention(t: Target):
    return expect(t.attrs.get("public_access_prevention"), lambda v: v == "enforced",
                  f"public_access_prevention is {t.attrs.get('public_access_prevention')!r}, not 'enforced'")


@rule("GR-STO-003", ERROR, "Lake buckets age their objects with lifecycle rules.",
      "add lifecycle_rule blocks: tiering for data, expiry for scratch, noncurrent-version expiry "
      "(use LakeBucket, which derives them from BucketKind)", BUCKET)
def lifecycle_rules(t: Target):
    value = t.attrs.get("lifecycle_rule")
    return expect(value, lambda v: bool(blocks(v)), "bucket has no lifecycle_rule")


@rule("GR-STO-004", ERROR, "Buckets and managed folders are never force-destroyed (destroy would delete data).",
      "set force_destroy = false (or drop it: false is the default)", BUCKET, "google_storage_managed_folder")
def no_force_destroy(t: Target):
    return expect(t.attrs.get("force_destroy", False), lambda v: not is_true(v), "force_destroy is true")


@rule("GR-STO-005", ERROR, "Buckets whose live objects never expire keep versions (overwrites and deletes recoverable).",
      "set versioning { enabled = true } with a noncurrent-version Delete rule, or expire live objects (scratch buckets)",
      BUCKET)
def versioned_unless_scratch(t: Target):
    if live_objects_expire(t.attrs):
        return None
    return expect(get(t.attrs, "versioning.enabled"), is_true, "bucket keeps objects forever but versioning is not enabled")


@rule("GR-STO-006", WARNING, "Soft delete stays on (deleted objects recoverable for a while).",
      "drop soft_delete_policy or set retention_duration_seconds >= 604800", BUCKET)
def soft_delete_kept(t: Target):
    seconds = get(t.attrs, "soft_delete_policy.retention_duration_seconds")
    if seconds is None or computed(seconds):
        return None
    return "soft delete is disabled (retention 0)" if as_int(seconds) == 0 else None


RULES = [uniform_access, public_access_prevention, lifecycle_rules, no_force_destroy, versioned_unless_scratch, soft_delete_kept]
