"""Boundary cases of the rules that encode what the GCP APIs reject at apply time (issue: day one
on a real project). Each rule: at the limit passes, one past fails; tests/test_guardrails.py holds
the plain failing and passing case of every rule."""

from __future__ import annotations

import json

import pytest

from tests.support import errors, fired, with_
from tests.test_guardrails import (
    AUDIT, CONNECTION, DQ_OK, DQ_TABLE, GOOD_COMPOSER, GOOD_DATAPROC, GOOD_FIREWALL, GOOD_GPU_DATAPROC, GOOD_PROVIDER, GOOD_SUBNET,
    GOOD_TABLE, GOOD_VM, GOOD_WINDOW, GRANT_LIMIT, member, scan,
)


def idle(ttl: str) -> dict:
    return with_(GOOD_DATAPROC, "cluster_config.lifecycle_config", {"idle_stop_ttl": ttl})


@pytest.mark.parametrize("attrs, bad", [
    (idle("599s"), True),  # below Dataproc's 10 minutes
    (idle("600s"), False),  # at the minimum
    (idle("1209600s"), False),  # 14 days: at the maximum
    (idle("1209601s"), True),
    (with_(GOOD_DATAPROC, "cluster_config.lifecycle_config", {"idle_stop_ttl": "1800s", "auto_delete_ttl": "86400s"}), True),
    (with_(GOOD_DATAPROC, "cluster_config.lifecycle_config", None), True),  # runs forever
])
def test_dataproc_stops_within_the_api_range_and_never_deletes(attrs, bad):
    assert bool(errors(fired("GR-CMP-007", "google_dataproc_cluster", attrs))) is bad


@pytest.mark.parametrize("machine, bad", [
    ("n1-standard-8", False), ("n1-highmem-16", False),
    ("n2-standard-8", True),  # the prod finding: T4s on an N2 worker
    ("g2-standard-8", True),  # built-in L4: an accelerators block is refused
    ("a2-highgpu-1g", True),
])
def test_attached_gpus_only_on_n1(machine, bad):
    attrs = with_(GOOD_GPU_DATAPROC, "cluster_config.worker_config.machine_type", machine)
    assert bool(errors(fired("GR-CMP-014", "google_dataproc_cluster", attrs))) is bad


def test_gpus_on_a_vm_follow_the_same_rule():
    vm = {**GOOD_VM, "machine_type": "e2-standard-4", "guest_accelerator": [{"type": "nvidia-tesla-t4", "count": 1}]}
    assert errors(fired("GR-CMP-014", "google_compute_instance", vm))
    assert not errors(fired("GR-CMP-014", "google_compute_instance", {**vm, "machine_type": "n1-standard-4"}))


@pytest.mark.parametrize("secure_boot, bad", [(True, True), (False, False), (None, False)])
def test_gpu_driver_action_needs_secure_boot_off(secure_boot, bad):
    attrs = with_(GOOD_GPU_DATAPROC, "cluster_config.gce_cluster_config.shielded_instance_config.enable_secure_boot", secure_boot)
    assert bool(errors(fired("GR-CMP-015", "google_dataproc_cluster", attrs))) is bad


def test_secure_boot_stays_on_without_the_gpu_action():
    attrs = with_(GOOD_DATAPROC, "cluster_config.gce_cluster_config.shielded_instance_config", {"enable_secure_boot": True})
    assert not errors(fired("GR-CMP-015", "google_dataproc_cluster", attrs))


@pytest.mark.parametrize("version, bad", [
    ("2.2.41-debian12", True), ("2.2.42-debian12", False),
    ("2.1.75-debian11", True), ("2.1.76-debian11", False),
    ("2.0.56-debian10", True), ("2.0.57-debian10", False),
    ("2.2-debian12", False),  # a minor pin resolves to the newest patch
    ("2.3.1-debian12", False),
    ("1.5-debian10", True),
])
def test_scheduled_stop_needs_a_recent_image(version, bad):
    attrs = with_(GOOD_DATAPROC, "cluster_config.software_config.image_version", version)
    assert bool(errors(fired("GR-CMP-016", "google_dataproc_cluster", attrs))) is bad


def window(hours: int, recurrence: str) -> dict:
    return with_(GOOD_COMPOSER, "config.maintenance_window", {
        **GOOD_WINDOW, "end_time": f"2026-01-01T{2 + hours:02d}:00:00Z", "recurrence": recurrence})


@pytest.mark.parametrize("hours, recurrence, bad", [
    (4, "FREQ=WEEKLY;BYDAY=SA,SU", True),  # the finding: 8 h a week
    (6, "FREQ=WEEKLY;BYDAY=SA,SU", False),  # 12 h: at the limit
    (4, "FREQ=WEEKLY;BYDAY=FR,SA,SU", False),  # 12 h in three 4 h slots
    (5, "FREQ=WEEKLY;BYDAY=SA,SU", True),  # 10 h
    (3, "FREQ=DAILY", True),  # 21 h a week, but slots under 4 h
    (4, "FREQ=DAILY", False),
    (6, "FREQ=MONTHLY;BYMONTHDAY=1", True),
])
def test_composer_maintenance_needs_12_hours_in_4_hour_slots(hours, recurrence, bad):
    assert bool(errors(fired("GR-CMP-017", "google_composer_environment", window(hours, recurrence)))) is bad


@pytest.mark.parametrize("name, bad", [
    ("a" * 63, False), ("a" * 64, True),
    ("order-id-not-null", False), ("order_id-not-null", True),
    ("1st-check", True), ("check-", True), ("Check-2", False),
])
def test_dataplex_rule_names(name, bad):
    assert bool(errors(fired("GR-DAT-006", "google_dataplex_datascan", scan({**DQ_OK, "name": name})))) is bad


def test_dataplex_rule_names_are_unique_in_a_scan():
    assert errors(fired("GR-DAT-006", "google_dataplex_datascan", scan(DQ_OK, {**DQ_OK, "column": "other"})))


@pytest.mark.parametrize("rules, sampling, bad", [
    ((DQ_OK,), 100, False), ((DQ_OK,), 100.5, True), ((DQ_OK,), 0, False), ((DQ_OK,), -1, True),  # 0 = no sampling
    (({**DQ_OK, "threshold": 1},), 100, False), (({**DQ_OK, "threshold": 1.01},), 100, True),
    (({**DQ_TABLE, "threshold": 0.5},), 100, True),  # threshold on a table-level rule
    (({**DQ_OK, "ignore_null": True},), 100, True),  # ignore_null on a non-null expectation
])
def test_dataplex_rule_fields(rules, sampling, bad):
    assert bool(errors(fired("GR-DAT-007", "google_dataplex_datascan", scan(*rules, sampling=sampling)))) is bad


@pytest.mark.parametrize("field, granularity, bad", [
    ("at", "DAY", False), ("at", "HOUR", False), ("day", "DAY", False),
    ("day", "HOUR", True),  # HOUR needs a TIMESTAMP/DATETIME
    ("score", "DAY", True), ("missing", "DAY", True),
])
def test_partition_column(field, granularity, bad):
    attrs = with_(GOOD_TABLE, "time_partitioning", {"type": granularity, "field": field})
    assert bool(errors(fired("GR-DAT-008", "google_bigquery_table", attrs))) is bad


@pytest.mark.parametrize("columns, bad", [
    (["id", "n", "day", "ok"], False),  # 4: at the limit
    (["id", "n", "day", "ok", "amount"], True),  # 5
    (["score"], True),  # FLOAT
    (["id", "id"], True), (["nope"], True),
])
def test_clustering_columns(columns, bad):
    assert bool(errors(fired("GR-DAT-009", "google_bigquery_table", with_(GOOD_TABLE, "clustering", columns)))) is bad


def test_partition_rules_skip_ingestion_time_tables():
    table = with_(with_(GOOD_TABLE, "time_partitioning", {"type": "DAY"}), "clustering", None)
    assert not errors(fired("GR-DAT-008", "google_bigquery_table", table))
    assert not errors(fired("GR-DAT-009", "google_bigquery_table", table))


@pytest.mark.parametrize("firewall, bad", [
    (with_(GOOD_FIREWALL, "target_service_accounts", ["a@p.iam.gserviceaccount.com"]), False),
    (with_(GOOD_FIREWALL, "target_tags", ["airflow"]), True),
    ({**GOOD_FIREWALL, "source_ranges": None, "source_tags": ["dataproc"], "target_service_accounts": ["a@p.iam.gserviceaccount.com"]}, True),
    ({**GOOD_FIREWALL, "allow": None, "deny": [{"protocol": "all"}], "source_ranges": ["0.0.0.0/0"]}, False),  # deny-all selects no VM
])
def test_firewall_selects_by_service_account(firewall, bad):
    assert bool(errors(fired("GR-NET-008", "google_compute_firewall", firewall))) is bad


@pytest.mark.parametrize("log_config, bad", [
    ({"flow_sampling": 1}, False), ({"flow_sampling": 1.01}, True), ({"flow_sampling": 0}, True),
    ({"flow_sampling": 0.5, "aggregation_interval": "INTERVAL_5_MIN"}, False),
    ({"flow_sampling": 0.5, "aggregation_interval": "INTERVAL_2_MIN"}, True),
    ({"flow_sampling": 0.5, "metadata": "INCLUDE_ALL_METADATA", "metadata_fields": ["src_vpc"]}, True),
    ({"flow_sampling": 0.5, "metadata": "CUSTOM_METADATA", "metadata_fields": ["src_vpc"]}, False),
    ({"flow_sampling": 0.5, "metadata": "CUSTOM_METADATA"}, True),
])
def test_flow_log_config(log_config, bad):
    assert bool(errors(fired("GR-NET-009", "google_compute_subnetwork", {**GOOD_SUBNET, "log_config": log_config}))) is bad


@pytest.mark.parametrize("condition, bad", [
    ("assertion.repository_id == '812345678' && assertion.repository_owner_id == '98765432'", False),
    ("assertion.repository_id == '812345678'", True),  # owner not pinned
    ("assertion.repository == 'acme/gcp-data-platform'", True),  # by name: re-registrable
    ("assertion.repository_id == '812345678' && assertion.repository_owner_id == '98765432' || assertion.ref == 'x'", True),
])
def test_github_provider_pins_ids(condition, bad):
    attrs = with_(GOOD_PROVIDER, "attribute_condition", condition)
    assert bool(errors(fired("GR-IAM-007", "google_iam_workload_identity_pool_provider", attrs))) is bad


@pytest.mark.parametrize("rtype, path, bad", [
    ("google_service_account", "dev-platform/identities/x/sa", True),
    ("google_service_account_iam_member", "prod-platform/x/iam", True),
    ("google_service_account", "dev-bootstrap/identities/x/sa", False),
])
def test_service_accounts_only_in_bootstrap(rtype, path, bad):
    assert bool(errors(fired("GR-IAM-008", rtype, {"account_id": "acme-dev-x"}, path=path))) is bad


@pytest.mark.parametrize("grant, bad", [
    (member("roles/resourcemanager.projectIamAdmin"), True),
    ({**member("roles/resourcemanager.projectIamAdmin"), "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}}, True),
    ({**member("roles/resourcemanager.projectIamAdmin"), "condition": {"title": "t", "expression": GRANT_LIMIT}}, False),
    (member("roles/iam.securityAdmin"), True),
    (member("roles/bigquery.jobUser"), False),
])
def test_role_granting_roles_need_a_grant_limit(grant, bad):
    assert bool(errors(fired("GR-IAM-009", "google_project_iam_member", grant))) is bad


@pytest.mark.parametrize("role, bad", [
    ("roles/secretmanager.admin", True), ("roles/secretmanager.secretAccessor", True),
    ("roles/secretmanager.viewer", False), ("roles/secretmanager.secretVersionAdder", False),
])
def test_no_project_wide_secret_reads(role, bad):
    assert bool(errors(fired("GR-IAM-010", "google_project_iam_member", member(role)))) is bad


@pytest.mark.parametrize("types, exempt, bad", [
    (("ADMIN_READ", "DATA_READ", "DATA_WRITE"), [], False),
    (("DATA_READ", "DATA_WRITE"), [], True),  # the storage-only config of before had no ADMIN_READ
    (("ADMIN_READ", "DATA_READ", "DATA_WRITE"), ["serviceAccount:ci@p.iam.gserviceaccount.com"], True),
])
def test_audit_configs_are_complete(types, exempt, bad):
    attrs = {**AUDIT, "audit_log_config": [{"log_type": t, **({"exempted_members": exempt} if exempt else {})} for t in types]}
    assert bool(errors(fired("GR-LOG-001", "google_project_iam_audit_config", attrs))) is bad


@pytest.mark.parametrize("version, bad", [
    ("projects/p/secrets/acme-dev-github-oauth-token/versions/1", False),
    ("projects/p/secrets/acme-dev-github-oauth-token/versions/12", False),
    ("${google_secret_manager_secret.token_secret_1.id}/versions/1", True),  # created in the same apply
    ("projects/p/secrets/acme-dev-github-oauth-token/versions/latest", True),  # not pinned
])
def test_connection_reads_a_pinned_existing_version(version, bad):
    attrs = with_(CONNECTION, "github_config.authorizer_credential.oauth_token_secret_version", version)
    assert bool(errors(fired("GR-CI-001", "google_cloudbuildv2_connection", attrs))) is bad


def test_build_trigger_never_runs_as_the_compute_default_account():
    attrs = {"name": "t", "service_account": "projects/p/serviceAccounts/123-compute@developer.gserviceaccount.com"}
    assert errors(fired("GR-CI-002", "google_cloudbuild_trigger", attrs))


@pytest.mark.parametrize("role_id, bad", [("a" * 64, False), ("a" * 65, True), ("ab", True), ("acme_dev.ci_plan", False)])
def test_custom_role_ids(role_id, bad):
    assert bool(errors(fired("GR-NAM-007", "google_project_iam_custom_role", {"role_id": role_id}))) is bad


def test_secret_replication_must_name_regions():
    secret = {"secret_id": "s", "replication": {"user_managed": {"replicas": []}}}
    assert errors(fired("GR-DAT-010", "google_secret_manager_secret", secret))


def test_json_schema_fixture_is_what_bigquery_reads():
    assert [f["name"] for f in json.loads(GOOD_TABLE["schema"])][:2] == ["id", "n"]
