"""Guardrails: every rule fails and passes on its own case; synth refuses rule-breaking
resources wherever they come from (raw provider classes, overrides, later aspects), names
them by construct path and rule id, honours suppressions with reasons only, and reports."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dataplatform.guardrails import RULES, RULES_BY_ID, Target
from dataplatform.guardrails.engine import check_target
from tests.support import IAP, LABELS, environment_names, fired, guarded_app, report, with_

GOOD_BUCKET = {
    "name": "acme-dev-landing", "uniform_bucket_level_access": True, "public_access_prevention": "enforced",
    "force_destroy": False, "versioning": {"enabled": True}, "lifecycle": {"prevent_destroy": True},
    "soft_delete_policy": {"retention_duration_seconds": 604800}, "labels": LABELS,
    "lifecycle_rule": [{"action": {"type": "SetStorageClass", "storage_class": "NEARLINE"}, "condition": {"age": 90}},
                       {"action": {"type": "Delete"}, "condition": {"with_state": "ARCHIVED", "days_since_noncurrent_time": 30}}],
}
GOOD_FIREWALL = {"name": "fw-iap", "direction": "INGRESS", "source_ranges": [IAP],
                 "allow": [{"protocol": "tcp", "ports": ["22", "8080"]}], "log_config": {"metadata": "INCLUDE_ALL_METADATA"}}
GOOD_VM = {
    "name": "airflow", "network_interface": [{"subnetwork": "${google_compute_subnetwork.s.self_link}"}],
    "shielded_instance_config": {"enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True},
    "metadata": {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE", "serial-port-enable": "FALSE"},
    "service_account": {"email": "acme-dev-orchestrator@p.iam.gserviceaccount.com", "scopes": ["cloud-platform"]},
    "labels": LABELS,
}
GOOD_DATAPROC = {"name": "analytics", "cluster_config": {
    "gce_cluster_config": {"internal_ip_only": True, "service_account": "acme-dev-dataproc@p.iam.gserviceaccount.com"},
    "lifecycle_config": {"idle_stop_ttl": "1800s"}, "software_config": {"image_version": "2.2-debian12"},
    "worker_config": {"num_instances": 2}, "preemptible_worker_config": {"num_instances": 0}}, "labels": LABELS}
GOOD_COMPOSER = {"name": "composer", "labels": LABELS, "config": {
    "enable_private_environment": True, "node_config": {"service_account": "acme-prod-orchestrator@p.iam.gserviceaccount.com"},
    "workloads_config": {"worker": {"min_count": 1, "max_count": 6}}}}
GOOD_SUBNET = {"name": "acme-dev-europe-west1", "private_ip_google_access": True,
               "log_config": {"aggregation_interval": "INTERVAL_5_SEC", "flow_sampling": 0.5}}
GOOD_PROVIDER = {"oidc": {"issuer_uri": "https://token.actions.githubusercontent.com"},
                 "attribute_condition": "assertion.repository_id == '812345678' && assertion.repository_owner_id == '98765432'"}
GPU_ACTION = "gs://goog-dataproc-initialization-actions-europe-west1/gpu/install_gpu_driver.sh"


def launch_job(**environment) -> dict:
    body = {"launchParameter": {"jobName": "orders-scheduled", "environment": environment}}
    return {"http_target": {"uri": "https://dataflow.googleapis.com/v1b3/projects/p/locations/r/flexTemplates:launch",
                            "body": base64.b64encode(json.dumps(body).encode()).decode()}}


def member(role: str, who: str = "serviceAccount:a@p.iam.gserviceaccount.com") -> dict:
    return {"project": "p", "role": role, "member": who}


GOOD_GPU_DATAPROC = with_(with_(with_(GOOD_DATAPROC, "cluster_config.worker_config", {
    "num_instances": 2, "machine_type": "n1-standard-8", "accelerators": [{"accelerator_type": "nvidia-tesla-t4", "accelerator_count": 1}]}),
    "cluster_config.initialization_action", [{"script": GPU_ACTION, "timeout_sec": 1800}]),
    "cluster_config.gce_cluster_config.shielded_instance_config", {"enable_secure_boot": False, "enable_vtpm": True})
GOOD_WINDOW = {"start_time": "2026-01-01T02:00:00Z", "end_time": "2026-01-01T08:00:00Z", "recurrence": "FREQ=WEEKLY;BYDAY=SA,SU"}
SCHEMA = json.dumps([{"name": "id", "type": "STRING"}, {"name": "n", "type": "INTEGER"}, {"name": "score", "type": "FLOAT"},
                     {"name": "at", "type": "TIMESTAMP"}, {"name": "day", "type": "DATE"}, {"name": "ok", "type": "BOOLEAN"},
                     {"name": "amount", "type": "NUMERIC"}])
GOOD_TABLE = {"table_id": "orders", "deletion_protection": True, "schema": SCHEMA,
              "time_partitioning": {"type": "DAY", "field": "at"}, "clustering": ["id", "n", "day", "ok"]}
DQ_OK = {"column": "id", "dimension": "COMPLETENESS", "name": "id-not-null", "non_null_expectation": {}, "threshold": 0.99}
DQ_TABLE = {"dimension": "VALIDITY", "name": "table-not-empty", "table_condition_expectation": {"sql_expression": "COUNT(*) > 0"}}


def scan(*rules, sampling=100) -> dict:
    return {"data_scan_id": "s", "data_quality_spec": {"sampling_percent": sampling, "rules": list(rules)}}


GRANT_LIMIT = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(['roles/bigquery.jobUser'])"
AUDIT = {"project": "p", "service": "secretmanager.googleapis.com",
         "audit_log_config": [{"log_type": "ADMIN_READ"}, {"log_type": "DATA_READ"}, {"log_type": "DATA_WRITE"}]}
CONNECTION = {"name": "c", "location": "europe-west1", "github_config": {"app_installation_id": 1, "authorizer_credential": {
    "oauth_token_secret_version": "projects/p/secrets/acme-dev-github-oauth-token/versions/1"}}}


def etl_launcher(max_active_jobs="15", instances=2, max_loads="288") -> dict:
    env = {"PIPELINES_JSON": json.dumps({"orders": {"parameters": {"max_loads_per_day": max_loads}, "environment": {}}})}
    if max_active_jobs is not None:
        env["MAX_ACTIVE_JOBS"] = max_active_jobs
    return {"service_config": {"max_instance_count": instances, "environment_variables": env}}


# rule id -> (resource type, failing attributes, passing attributes[, Target extras for failing, passing])
CASES: dict[str, tuple] = {
    "GR-PRC-001": ("google_cloudfunctions2_function", etl_launcher(max_active_jobs=None), etl_launcher()),
    "GR-PRC-002": ("google_cloudfunctions2_function", etl_launcher(max_loads="1500"), etl_launcher()),
    "GR-PRC-003": ("google_cloud_scheduler_job", launch_job(maxWorkers=2),
                   {"http_target": {"uri": "https://cloudtasks.googleapis.com/v2/projects/p/locations/r/queues/q/tasks"}}),
    "GR-STO-001": ("google_storage_bucket", with_(GOOD_BUCKET, "uniform_bucket_level_access", False), GOOD_BUCKET),
    "GR-STO-002": ("google_storage_bucket", with_(GOOD_BUCKET, "public_access_prevention", "inherited"), GOOD_BUCKET),
    "GR-STO-003": ("google_storage_bucket", with_(GOOD_BUCKET, "lifecycle_rule", None), GOOD_BUCKET),
    "GR-STO-004": ("google_storage_managed_folder", {"name": "orders/", "force_destroy": True}, {"name": "orders/", "force_destroy": False}),
    "GR-STO-005": ("google_storage_bucket", with_(GOOD_BUCKET, "versioning.enabled", False),
                   with_(with_(GOOD_BUCKET, "versioning.enabled", False), "lifecycle_rule",
                         [{"action": {"type": "Delete"}, "condition": {"age": 7}}])),
    "GR-STO-006": ("google_storage_bucket", with_(GOOD_BUCKET, "soft_delete_policy.retention_duration_seconds", 0), GOOD_BUCKET),
    "GR-IAM-001": ("google_project_iam_member", member("roles/editor"), member("roles/bigquery.jobUser")),
    "GR-IAM-002": ("google_storage_bucket_iam_binding", {"bucket": "b", "role": "roles/storage.objectViewer", "members": ["allUsers"]},
                   {"bucket": "b", "role": "roles/storage.objectViewer", "members": ["group:data@acme.example"]}),
    "GR-IAM-003": ("google_service_account_key", {"service_account_id": "sa"}, None),
    "GR-IAM-004": ("google_project_iam_member", member("roles/iam.serviceAccountUser"), member("roles/dataflow.worker")),
    "GR-IAM-005": ("google_project_iam_binding", {"project": "p", "role": "roles/logging.logWriter", "members": ["user:a@b.c"]}, None),
    "GR-IAM-006": ("google_project_iam_member", member("roles/logging.logWriter"), member("roles/logging.logWriter"),
                   {}, {"metadata": {"project_scope_reason": "write logs (project-scoped API)"}}),
    "GR-IAM-007": ("google_iam_workload_identity_pool_provider", with_(GOOD_PROVIDER, "attribute_condition", "assertion.repository == 'acme/gcp-data-platform'"),
                   GOOD_PROVIDER),
    "GR-IAM-008": ("google_service_account", {"account_id": "acme-dev-extra"}, {"account_id": "acme-dev-extra"},
                   {"path": "dev-platform/extra/sa"}, {"path": "dev-bootstrap/identities/extra/sa"}),
    "GR-IAM-009": ("google_project_iam_member", member("roles/resourcemanager.projectIamAdmin"),
                   {**member("roles/resourcemanager.projectIamAdmin"), "condition": {"title": "t", "expression": GRANT_LIMIT}}),
    "GR-IAM-010": ("google_project_iam_member", member("roles/secretmanager.admin"), member("roles/secretmanager.viewer")),
    "GR-IAM-011": ("google_service_account_iam_member", {"service_account_id": "sa", "role": "roles/iam.workloadIdentityUser",
                                                         "member": "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*"},
                   {"service_account_id": "sa", "role": "roles/iam.workloadIdentityUser",
                    "member": "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/attribute.repository_id/812345678"}),
    "GR-NET-001": ("google_compute_firewall", with_(GOOD_FIREWALL, "source_ranges", ["0.0.0.0/0"]),
                   with_(GOOD_FIREWALL, "source_ranges", ["0.0.0.0/0"]) | {"allow": None, "deny": [{"protocol": "all"}]}),
    "GR-NET-002": ("google_compute_firewall", with_(GOOD_FIREWALL, "source_ranges", ["10.0.0.0/8"]), GOOD_FIREWALL),
    "GR-NET-003": ("google_compute_instance", with_(GOOD_VM, "network_interface", [{"subnetwork": "s", "access_config": [{}]}]), GOOD_VM),
    "GR-NET-004": ("google_compute_subnetwork", with_(GOOD_SUBNET, "log_config", None), GOOD_SUBNET),
    "GR-NET-005": ("google_compute_subnetwork", with_(GOOD_SUBNET, "private_ip_google_access", False), GOOD_SUBNET),
    "GR-NET-006": ("google_compute_network", {"name": "vpc"}, {"name": "vpc", "auto_create_subnetworks": False}),
    "GR-NET-007": ("google_compute_firewall", with_(GOOD_FIREWALL, "log_config", None), GOOD_FIREWALL),
    "GR-NET-008": ("google_compute_firewall", with_(GOOD_FIREWALL, "target_tags", ["airflow"]),
                   with_(GOOD_FIREWALL, "target_service_accounts", ["acme-dev-orchestrator@p.iam.gserviceaccount.com"])),
    "GR-NET-009": ("google_compute_subnetwork", with_(GOOD_SUBNET, "log_config.flow_sampling", 0), GOOD_SUBNET),
    "GR-CMP-001": ("google_compute_instance", with_(GOOD_VM, "shielded_instance_config", None), GOOD_VM),
    "GR-CMP-002": ("google_compute_instance", with_(GOOD_VM, "metadata.enable-oslogin", "FALSE"), GOOD_VM),
    "GR-CMP-003": ("google_compute_instance", with_(GOOD_VM, "metadata.serial-port-enable", "TRUE"), GOOD_VM),
    "GR-CMP-004": ("google_compute_instance", with_(GOOD_VM, "metadata.block-project-ssh-keys", None), GOOD_VM),
    "GR-CMP-005": ("google_compute_instance", with_(GOOD_VM, "service_account.email", "123-compute@developer.gserviceaccount.com"), GOOD_VM),
    "GR-CMP-006": ("google_dataproc_cluster", with_(GOOD_DATAPROC, "cluster_config.gce_cluster_config.internal_ip_only", False), GOOD_DATAPROC),
    "GR-CMP-007": ("google_dataproc_cluster", with_(GOOD_DATAPROC, "cluster_config.lifecycle_config", {"idle_delete_ttl": "1800s"}), GOOD_DATAPROC),
    "GR-CMP-008": ("google_composer_environment", with_(GOOD_COMPOSER, "config.enable_private_environment", None), GOOD_COMPOSER),
    "GR-CMP-009": ("google_cloudfunctions2_function", {"service_config": {"service_account_email": "l@p.iam.gserviceaccount.com"}},
                   {"service_config": {"max_instance_count": 3, "service_account_email": "l@p.iam.gserviceaccount.com"}}),
    "GR-CMP-010": ("google_cloud_scheduler_job", launch_job(maxWorkers=500, ipConfiguration="WORKER_IP_PRIVATE"),
                   launch_job(maxWorkers=2, ipConfiguration="WORKER_IP_PRIVATE")),
    "GR-CMP-011": ("google_dataflow_job", {"max_workers": 2, "ip_configuration": "WORKER_IP_PUBLIC"},
                   {"max_workers": 2, "ip_configuration": "WORKER_IP_PRIVATE"}),
    "GR-CMP-012": ("google_dataproc_autoscaling_policy", {"worker_config": {"max_instances": 10}, "secondary_worker_config": {"max_instances": 200}},
                   {"worker_config": {"max_instances": 6}, "secondary_worker_config": {"max_instances": 20}}),
    "GR-CMP-013": ("google_composer_environment", with_(GOOD_COMPOSER, "config.workloads_config.worker.max_count", 100), GOOD_COMPOSER),
    "GR-CMP-014": ("google_dataproc_cluster", with_(GOOD_GPU_DATAPROC, "cluster_config.worker_config.machine_type", "n2-standard-8"), GOOD_GPU_DATAPROC),
    "GR-CMP-015": ("google_dataproc_cluster", with_(GOOD_GPU_DATAPROC, "cluster_config.gce_cluster_config.shielded_instance_config.enable_secure_boot", True),
                   GOOD_GPU_DATAPROC),
    "GR-CMP-016": ("google_dataproc_cluster", with_(GOOD_DATAPROC, "cluster_config.software_config.image_version", "2.2.41-debian12"),
                   with_(GOOD_DATAPROC, "cluster_config.software_config.image_version", "2.2.42-debian12")),
    "GR-CMP-017": ("google_composer_environment", with_(GOOD_COMPOSER, "config.maintenance_window", {**GOOD_WINDOW, "end_time": "2026-01-01T06:00:00Z"}),
                   with_(GOOD_COMPOSER, "config.maintenance_window", GOOD_WINDOW)),
    "GR-DAT-001": ("google_bigquery_table", {"table_id": "orders", "deletion_protection": False}, {"table_id": "orders", "deletion_protection": True}),
    "GR-DAT-002": ("google_bigquery_dataset", {"dataset_id": "w", "delete_contents_on_destroy": True, "lifecycle": {"prevent_destroy": True}},
                   {"dataset_id": "w", "delete_contents_on_destroy": False, "lifecycle": {"prevent_destroy": True}}),
    "GR-DAT-003": ("google_bigquery_dataset", {"dataset_id": "w"}, {"dataset_id": "w", "lifecycle": {"prevent_destroy": True}}),
    "GR-DAT-004": ("google_storage_bucket", with_(GOOD_BUCKET, "lifecycle", None), GOOD_BUCKET),
    "GR-DAT-005": ("google_secret_manager_secret", {"secret_id": "s"}, {"secret_id": "s", "deletion_protection": True}),
    "GR-DAT-006": ("google_dataplex_datascan", scan({**DQ_OK, "name": "id_x-not-null"}), scan(DQ_OK, DQ_TABLE)),
    "GR-DAT-007": ("google_dataplex_datascan", scan({**DQ_TABLE, "threshold": 0.99}), scan(DQ_OK, DQ_TABLE)),
    "GR-DAT-008": ("google_bigquery_table", with_(GOOD_TABLE, "time_partitioning.field", "score"), GOOD_TABLE),
    "GR-DAT-009": ("google_bigquery_table", with_(GOOD_TABLE, "clustering", ["id", "score"]), GOOD_TABLE),
    "GR-DAT-010": ("google_secret_manager_secret", {"secret_id": "s", "replication": {"auto": {}}},
                   {"secret_id": "s", "replication": {"user_managed": {"replicas": [{"location": "europe-west1"}]}}}),
    "GR-LBL-001": ("google_storage_bucket", with_(GOOD_BUCKET, "labels", {"owner": "x"}), GOOD_BUCKET, {"label_attribute": "labels"},
                   {"label_attribute": "labels"}),
    "GR-LBL-002": ("google_storage_bucket", with_(GOOD_BUCKET, "labels", {**LABELS, "Team": "Data Platform"}), GOOD_BUCKET,
                   {"label_attribute": "labels"}, {"label_attribute": "labels"}),
    "GR-NAM-001": ("google_storage_bucket", with_(GOOD_BUCKET, "name", "Acme_Google_Bucket"), GOOD_BUCKET),
    "GR-NAM-002": ("google_service_account", {"account_id": "acme-analytics-plat-dev-orchestrator"}, {"account_id": "acme-dev-orchestrator"}),
    "GR-NAM-003": ("google_bigquery_dataset", {"dataset_id": "acme-dev-warehouse"}, {"dataset_id": "acme_dev_warehouse"}),
    "GR-NAM-004": ("google_bigquery_table", {"table_id": "1orders"}, {"table_id": "orders"}),
    "GR-NAM-005": ("google_compute_firewall", with_(GOOD_FIREWALL, "name", "fw_IAP"), GOOD_FIREWALL),
    "GR-NAM-006": ("google_secret_manager_secret", {"secret_id": "sendgrid key!"}, {"secret_id": "sendgrid-api-key"}),
    "GR-NAM-007": ("google_project_iam_custom_role", {"role_id": "acme-dev-ci-plan"}, {"role_id": "acme_dev_ci_plan_reads"}),
    "GR-LOG-001": ("google_project_iam_audit_config", with_(AUDIT, "audit_log_config", [{"log_type": "DATA_READ"}, {"log_type": "DATA_WRITE"}]), AUDIT),
    "GR-CI-001": ("google_cloudbuildv2_connection", with_(CONNECTION, "github_config.authorizer_credential.oauth_token_secret_version",
                                                           "${google_secret_manager_secret.token_secret_1.id}/versions/1"), CONNECTION),
    "GR-CI-002": ("google_cloudbuild_trigger", {"name": "t", "filename": "b.yaml"},
                  {"name": "t", "filename": "b.yaml", "service_account": "projects/p/serviceAccounts/acme-dev-build@p.iam.gserviceaccount.com"}),
}


from tests.test_guardrails_ml_slo import CASES as ML_SLO_CASES  # noqa: E402  (rule families of issue 14)

CASES.update(ML_SLO_CASES)


def test_rule_pack_size_and_catalogue():
    assert len(RULES) >= 20
    families = {r.id.split("-")[1] for r in RULES}
    assert families == {"STO", "IAM", "NET", "CMP", "DAT", "LBL", "NAM", "LOG", "CI", "PRC", "ML", "SLO"}
    for r in RULES:
        assert r.description and r.fix and r.resource_types, r.id


def test_every_rule_has_a_failing_and_a_passing_case():
    assert set(CASES) == set(RULES_BY_ID)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fails_on_its_bad_case(rule_id):
    rtype, bad, _, *extra = CASES[rule_id]
    target = extra[0] if extra else {}
    findings = fired(rule_id, rtype, bad, **target)
    assert [f.rule for f in findings] == [rule_id]
    assert findings[0].severity is RULES_BY_ID[rule_id].severity
    assert findings[0].path == target.get("path", "stack/thing") and findings[0].fix


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_passes_on_its_good_case(rule_id):
    rtype, _, good, *extra = CASES[rule_id]
    if good is None:
        pytest.skip(f"{rtype} is refused whatever its attributes")
    assert fired(rule_id, rtype, good, **(extra[1] if len(extra) > 1 else {})) == []


@pytest.mark.parametrize("attrs, rule_id", [
    (with_(GOOD_BUCKET, "uniform_bucket_level_access", "${var.ubla}"), "GR-STO-001"),
    ({"service_config": {"max_instance_count": "${var.max}", "service_account_email": "l@p"}}, "GR-CMP-009"),
])
def test_values_known_only_at_apply_are_warnings_not_errors(attrs, rule_id):
    rtype = CASES[rule_id][0]
    (finding,) = fired(rule_id, rtype, attrs)
    assert finding.severity.value == "warning" and "cannot" in finding.message


@pytest.mark.parametrize("environment, rules", [
    ({"maxWorkers": 2, "ipConfiguration": "WORKER_IP_PRIVATE"}, []),
    ({"maxWorkers": 400, "ipConfiguration": "WORKER_IP_PRIVATE"}, ["GR-CMP-010"]),
    ({"ipConfiguration": "WORKER_IP_PUBLIC"}, ["GR-CMP-010", "GR-CMP-011"]),
])
def test_dataflow_rules_read_the_launchers_pipelines_json(environment, rules):
    """Per-arrival launches go through the launcher function: its PIPELINES_JSON is checked too."""
    function = {"service_config": {"max_instance_count": 2, "service_account_email": "l@p.iam.gserviceaccount.com",
                                   "environment_variables": {"MAX_ACTIVE_JOBS": "15", "PIPELINES_JSON": json.dumps(
                                       {"orders": {"environment": environment, "parameters": {"max_loads_per_day": "288"}}})}}}
    findings, _ = check_target(Target("google_cloudfunctions2_function", function, path="stack/thing"), RULES)
    assert [f.rule for f in findings] == rules
    assert all("PIPELINES_JSON[orders]" in f.message for f in findings)


def test_computed_names_are_not_judged():
    assert fired("GR-NAM-001", "google_storage_bucket", with_(GOOD_BUCKET, "name", "${var.bucket}")) == []


# ---------------------------------------------------------------- at synth


@pytest.fixture()
def small(tmp_path):
    """A throwaway app + stack with the provider, the guardrails and then the label aspect."""
    app, (stack,) = guarded_app(tmp_path, "s")  # guardrails before the label aspect on purpose: order must not matter
    return app, stack


def lake_bucket(scope, id_: str):
    from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings

    return LakeBucket(scope, id_, LakeBucketSettings(name=f"acme-dev-{id_}", location="europe-west1", kind=BucketKind.DATA))


def refusal(app) -> str:
    from dataplatform.guardrails import GuardrailError, synth

    with pytest.raises(GuardrailError, match=r"\(error\) at ") as info:
        synth(app)
    return str(info.value)


def test_synth_sees_labels_stamped_by_an_aspect_added_later(small):
    from dataplatform.guardrails import synth

    app, stack = small
    lake_bucket(stack, "landing")
    assert "0 errors" in synth(app)
    assert report(app)["stacks"]["s"]["status"] == "passed"


def test_the_report_lists_the_rules_the_stacks_were_checked_with(small):
    from dataplatform.guardrails import META_RULES, RULES, synth

    app, stack = small
    lake_bucket(stack, "landing")
    synth(app)
    data = report(app)
    assert data["rule_count"] == len(RULES)
    assert [r["id"] for r in data["rules"]] == [r.id for r in (*RULES, *META_RULES)]


def test_synth_sees_escape_hatch_overrides(small):
    app, stack = small
    lake_bucket(stack, "landing").bucket.add_override("force_destroy", True)
    message = refusal(app)
    assert "GR-STO-004" in message and "s/landing/bucket" in message


def test_synth_sees_changes_made_by_aspects_deeper_in_the_tree(small):
    """An aspect on a child construct runs after the stack's aspects; the check still sees its change."""
    import jsii
    from cdktn import Aspects, IAspect, TerraformResource

    @jsii.implements(IAspect)
    class DropLabels:
        def visit(self, node):
            if isinstance(node, TerraformResource) and node.terraform_resource_type == "google_storage_bucket":
                node.add_override("labels", None)

    app, stack = small
    bucket = lake_bucket(stack, "curated")
    Aspects.of(bucket).add(DropLabels())
    message = refusal(app)
    assert "GR-LBL-001" in message and "s/curated/bucket" in message


def test_tokens_reach_the_rules_as_terraform_expressions(small):
    """A value from another resource or a variable is a "${...}" string: judged as unverifiable (warning)."""
    from cdktn import TerraformVariable

    from dataplatform.guardrails import synth

    app, stack = small
    ubla = TerraformVariable(stack, "ubla", type="bool")
    landing = lake_bucket(stack, "landing")
    landing.bucket.uniform_bucket_level_access = ubla.boolean_value
    synth(app)
    (finding,) = report(app)["stacks"]["s"]["findings"]
    assert finding["rule"] == "GR-STO-001" and finding["severity"] == "warning" and "${var.ubla}" in finding["message"]


def test_suppression_with_a_reason_is_honoured_and_reported(small):
    from cdktn_provider_google.compute_firewall import ComputeFirewall, ComputeFirewallAllow

    from dataplatform.guardrails import suppress, synth

    app, stack = small
    fw = ComputeFirewall(stack, "fw", name="fw-iap", network="vpc", source_ranges=[IAP],
                         allow=[ComputeFirewallAllow(protocol="tcp", ports=["22"])])
    suppress(fw, "GR-NET-007", reason="short-lived test rule, logging not needed")
    synth(app)
    stack_report = report(app)["stacks"]["s"]
    assert stack_report["findings"] == []
    assert [(s["rule"], s["path"], s["reason"]) for s in stack_report["suppressed"]] == [
        ("GR-NET-007", "s/fw", "short-lived test rule, logging not needed")]
    md = (Path(app.outdir) / "guardrails" / "report.md").read_text()
    assert "short-lived test rule" in md and "GR-NET-007" in md


def test_suppression_covers_the_constructs_below(small):
    from dataplatform.guardrails import suppress, synth

    app, stack = small
    bucket = lake_bucket(stack, "landing")
    bucket.bucket.add_override("soft_delete_policy.retention_duration_seconds", 0)
    suppress(bucket, "GR-STO-006", reason="test data, no soft delete wanted")
    synth(app)
    assert [s["path"] for s in report(app)["stacks"]["s"]["suppressed"]] == ["s/landing/bucket"]


@pytest.mark.parametrize("rule_id, reason, expected", [
    ("GR-NET-002", "", "GR-SUP-001"),  # no reason: an error by itself, and it suppresses nothing
    ("GR-NET-999", "typo", "GR-SUP-002"),
])
def test_bad_suppressions_are_errors(small, rule_id, reason, expected):
    from cdktn_provider_google.compute_firewall import ComputeFirewall, ComputeFirewallAllow

    from dataplatform.guardrails import suppress

    app, stack = small
    fw = ComputeFirewall(stack, "fw", name="fw-ssh", network="vpc", source_ranges=["10.0.0.0/8"],
                         allow=[ComputeFirewallAllow(protocol="tcp", ports=["22"])], log_config={"metadata": "INCLUDE_ALL_METADATA"})
    suppress(fw, rule_id, reason=reason)
    message = refusal(app)
    assert expected in message and "s/fw" in message
    assert "GR-NET-002" in message  # still refused: the bad suppression did not hide it


def test_unused_suppression_is_a_warning(small):
    from dataplatform.guardrails import suppress, synth

    app, stack = small
    suppress(lake_bucket(stack, "landing"), "GR-NET-001", reason="left over")
    synth(app)
    assert [f["rule"] for f in report(app)["stacks"]["s"]["findings"]] == ["GR-SUP-003"]


def test_attaching_to_the_app_is_refused(tmp_path):
    from cdktn import App

    from dataplatform.guardrails import attach_guardrails

    with pytest.raises(TypeError, match=r"^guardrails attach to a TerraformStack, not App: they check what each stack writes$"):
        attach_guardrails(App(outdir=str(tmp_path)))


def test_a_stack_is_registered_once_and_its_registration_is_not_changed_in_place(tmp_path):
    """A second attach keeps the first registration, which is frozen: changing what a stack is
    checked with means removing it from `attached` and attaching again."""
    import dataclasses

    from dataplatform.guardrails import attach_guardrails, attached

    app, (stack,) = guarded_app(tmp_path, "s")
    first = attached[stack]
    attach_guardrails(stack, rules=[RULES[0]], prepare=lambda doc: doc)
    assert attached[stack] is first and (first.rules, first.prepare) == (RULES, None) and first.rules is not RULES
    with pytest.raises(dataclasses.FrozenInstanceError, match="^cannot assign to field 'prepare'$"):
        first.prepare = lambda doc: doc
    assert first.prepare is None


# ---------------------------------------------------------------- the real environments


def test_every_environment_stack_is_guarded_and_passes(synth_dir, stacks):
    """EnvironmentStack attaches the guardrails; the session's synth ran them on every stack."""
    path = synth_dir / "guardrails" / "report.json"
    assert path.exists(), "no guardrail report: EnvironmentStack must call attach_guardrails(self)"
    data = json.loads(path.read_text())
    assert set(data["stacks"]) == set(stacks)
    for name, s in data["stacks"].items():
        assert s["status"] == "passed" and s["errors"] == 0, (name, s.get("findings"))
        assert s["resources"] == sum(len(v) for v in stacks[name]["resource"].values())
    assert data["rule_count"] == len(RULES)


def test_rule_breaking_raw_resources_refuse_synth(tmp_path):
    """Raw provider classes added to a synthesized environment are refused, each named by path and rule."""
    from cdktn_provider_google.compute_firewall import ComputeFirewall, ComputeFirewallAllow
    from cdktn_provider_google.compute_instance import (
        ComputeInstance,
        ComputeInstanceNetworkInterface,
        ComputeInstanceNetworkInterfaceAccessConfig,
    )
    from cdktn_provider_google.project_iam_member import ProjectIamMember
    from cdktn_provider_google.service_account_key import ServiceAccountKey
    from cdktn_provider_google.storage_bucket import StorageBucket

    from main import build_app

    app = build_app(tmp_path / "out")  # EnvironmentStack attaches the guardrails itself
    platform = app.node.find_child("dev-platform")
    StorageBucket(platform, "public-bucket", name="acme-dev-public", location="EU", public_access_prevention="inherited")
    ComputeFirewall(platform, "open-ssh", name="open-ssh", network="default", source_ranges=["0.0.0.0/0"],
                    allow=[ComputeFirewallAllow(protocol="tcp", ports=["22"])])
    ProjectIamMember(platform, "project-editor", project="acme-data-dev", role="roles/editor", member="user:someone@acme.example")
    ProjectIamMember(platform, "project-act-as", project="acme-data-dev", role="roles/iam.serviceAccountUser",
                     member="user:someone@acme.example")
    ServiceAccountKey(platform, "key", service_account_id="acme-dev-uploader")
    ComputeInstance(platform, "public-vm", name="public-vm", zone="europe-west1-b", machine_type="e2-small",
                    boot_disk={"initialize_params": {"image": "debian-cloud/debian-12"}},
                    # typed structs: a plain dict's nested access_config would be silently dropped by jsii
                    network_interface=[ComputeInstanceNetworkInterface(
                        network="default", access_config=[ComputeInstanceNetworkInterfaceAccessConfig()])])

    message = refusal(app)
    for path, rule_id in [
        ("dev-platform/public-bucket", "GR-STO-001"), ("dev-platform/public-bucket", "GR-STO-002"),
        ("dev-platform/public-bucket", "GR-STO-003"), ("dev-platform/open-ssh", "GR-NET-001"),
        ("dev-platform/open-ssh", "GR-NET-002"), ("dev-platform/project-editor", "GR-IAM-001"),
        ("dev-platform/project-act-as", "GR-IAM-004"), ("dev-platform/key", "GR-IAM-003"),
        ("dev-platform/public-vm", "GR-NET-003"), ("dev-platform/public-vm", "GR-CMP-001"),
        ("dev-platform/public-vm", "GR-CMP-002"), ("dev-platform/public-vm", "GR-CMP-005"),
    ]:
        assert f"{rule_id} (error) at {path} " in message, (path, rule_id)
    assert "Fix: " in message
    # The refused stack's Terraform is removed; the report says why. Every other stack was checked in the same pass.
    assert not (tmp_path / "out" / "stacks" / "dev-platform" / "cdk.tf.json").exists()
    data = report(app)
    assert data["stacks"]["dev-platform"]["status"] == "refused"
    others = {name: s["status"] for name, s in data["stacks"].items() if name != "dev-platform"}
    assert len(others) == 2 * len(environment_names()) - 1 and set(others.values()) == {"passed"}
    assert all((tmp_path / "out" / "stacks" / name / "cdk.tf.json").exists() for name in others)
    assert {"stack": "dev-platform", "rule": "GR-NET-001", "path": "dev-platform/open-ssh"}.items() <= next(
        f for f in data["findings"] if f["rule"] == "GR-NET-001").items()
