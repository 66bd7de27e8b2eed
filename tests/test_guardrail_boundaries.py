"""Guardrail boundaries: every limit at the limit passes and one past fails, with the exact
message; the odd encodings a real resource may use (port ranges, protocol `all` or `6`, a
firewall rule with no source, numbers as strings, roles at project vs resource level) count
the way GCP reads them. Rules are called directly on a Target: no synth, no cdktn app."""

from __future__ import annotations

import base64
import json

import pytest

from dataplatform.guardrails import RULES_BY_ID, Target
from dataplatform.guardrails.compute import CAPS
from dataplatform.guardrails.rule import Unverified
from tests.support import IAP, LABELS


def check(rule_id: str, rtype: str, attrs: dict, **extra) -> str | None:
    """The rule's message for this resource (None: it passes)."""
    rule = RULES_BY_ID[rule_id]
    assert rule.applies_to(rtype), (rule_id, rtype)
    return rule.check(Target(rtype, attrs, path="s/r", **extra))


# ---------------------------------------------------------------- compute caps

def test_the_caps_are_the_reviewed_values():
    assert (CAPS.dataflow_max_workers, CAPS.function_max_instances, CAPS.dataproc_max_workers, CAPS.composer_max_workers) == (50, 20, 50, 10)


def launch_body(environment: dict) -> str:
    return base64.b64encode(json.dumps({"launchParameter": {"environment": environment}}).encode()).decode()


def test_dataflow_worker_cap_at_the_limit_passes_one_past_fails():
    job = lambda n: {"max_workers": n, "ip_configuration": "WORKER_IP_PRIVATE"}  # noqa: E731
    assert check("GR-CMP-010", "google_dataflow_job", job(50)) is None
    assert check("GR-CMP-010", "google_dataflow_job", job(51)) == "job maxWorkers is 51, above the cap of 50"
    assert check("GR-CMP-010", "google_dataflow_job", job("50")) is None  # Terraform JSON writes numbers as strings too
    assert check("GR-CMP-010", "google_dataflow_job", job("51")) == "job maxWorkers is '51', above the cap of 50"


@pytest.mark.parametrize("value, message", [
    (None, "job maxWorkers is not set (unbounded)"),
    ("lots", "job maxWorkers is 'lots', above the cap of 50"),
    (True, "job maxWorkers is True, above the cap of 50"),  # a boolean is not a count
])
def test_dataflow_worker_cap_refuses_what_is_not_a_count(value, message):
    assert check("GR-CMP-010", "google_dataflow_job", {"max_workers": value}) == message


def test_dataflow_worker_cap_reads_scheduler_launch_bodies():
    uri = "https://dataflow.googleapis.com/v1b3/projects/p/locations/r/flexTemplates:launch"
    job = lambda env: {"http_target": {"uri": uri, "body": launch_body(env)}}  # noqa: E731
    assert check("GR-CMP-010", "google_cloud_scheduler_job", job({"maxWorkers": 50})) is None
    assert check("GR-CMP-010", "google_cloud_scheduler_job", job({"maxWorkers": 51})) == "launch request maxWorkers is 51, above the cap of 50"
    not_json = {"http_target": {"uri": uri, "body": base64.b64encode(b"{").decode()}}
    assert check("GR-CMP-010", "google_cloud_scheduler_job", not_json) == "launch request maxWorkers is not set (unbounded)"
    computed = check("GR-CMP-010", "google_cloud_scheduler_job", {"http_target": {"uri": uri, "body": "${var.body}"}})
    assert isinstance(computed, Unverified)
    assert computed == "launch request maxWorkers is computed ('${var.body}'); cannot check the cap of 50"
    # a Scheduler job calling anything else launches no Dataflow job
    assert check("GR-CMP-010", "google_cloud_scheduler_job", {"http_target": {"uri": "https://cloudtasks.googleapis.com/x"}}) is None


def test_dataflow_caps_of_several_pipelines_are_reported_together():
    env = {"PIPELINES_JSON": json.dumps({"b": {"environment": {"maxWorkers": 51, "ipConfiguration": "WORKER_IP_PRIVATE"}},
                                         "a": {"environment": {"maxWorkers": "${var.n}", "ipConfiguration": "WORKER_IP_PRIVATE"}}})}
    message = check("GR-CMP-010", "google_cloudfunctions2_function", {"service_config": {"environment_variables": env}})
    assert not isinstance(message, Unverified)  # one real error keeps the finding an error
    assert message == ("PIPELINES_JSON[a] maxWorkers is computed ('${var.n}'); cannot check the cap of 50; "
                       "PIPELINES_JSON[b] maxWorkers is 51, above the cap of 50")
    only_computed = {"PIPELINES_JSON": json.dumps({"a": {"environment": {"maxWorkers": "${var.n}"}}})}
    assert isinstance(check("GR-CMP-010", "google_cloudfunctions2_function", {"service_config": {"environment_variables": only_computed}}), Unverified)
    assert check("GR-CMP-010", "google_cloudfunctions2_function",
                 {"service_config": {"environment_variables": {"PIPELINES_JSON": "not json"}}}) is None


def test_a_pipelines_json_built_at_apply_time_is_a_warning_not_a_pass():
    """jsonencode(...) at apply time: nothing is known, so the launch rules warn instead of passing silently."""
    built = {"service_config": {"max_instance_count": 2, "environment_variables": {
        "MAX_ACTIVE_JOBS": "15", "PIPELINES_JSON": "${jsonencode(var.pipelines)}"}}}
    for rule_id in ("GR-CMP-010", "GR-CMP-011", "GR-PRC-002"):
        message = check(rule_id, "google_cloudfunctions2_function", built)
        assert isinstance(message, Unverified), (rule_id, message)
    assert check("GR-PRC-002", "google_cloudfunctions2_function", built) == "PIPELINES_JSON is computed; cannot check max_loads_per_day"
    # a literal JSON that only references a resource (a subnet's self_link) is still read
    literal = {"service_config": {"max_instance_count": 2, "environment_variables": {"MAX_ACTIVE_JOBS": "15", "PIPELINES_JSON": json.dumps(
        {"orders": {"environment": {"maxWorkers": 51, "subnetwork": "${google_compute_subnetwork.s.self_link}",
                                    "ipConfiguration": "WORKER_IP_PRIVATE"}, "parameters": {"max_loads_per_day": 1001}}})}}}
    assert check("GR-CMP-010", "google_cloudfunctions2_function", literal) == "PIPELINES_JSON[orders] maxWorkers is 51, above the cap of 50"
    assert check("GR-PRC-002", "google_cloudfunctions2_function", literal) == "PIPELINES_JSON[orders] max_loads_per_day is 1001"


@pytest.mark.parametrize("rtype, path", [
    ("google_cloudfunctions2_function", ("service_config", "max_instance_count")),
    ("google_cloudfunctions_function", ("max_instances",)),
    ("google_cloud_run_v2_service", ("template", "scaling", "max_instance_count")),
])
def test_function_instance_cap_at_the_limit_passes_one_past_fails(rtype, path):
    def attrs(n):
        out = node = {}
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = n
        return out

    where = ".".join(path)
    assert check("GR-CMP-009", rtype, attrs(20)) is None
    assert check("GR-CMP-009", rtype, attrs(21)) == f"{where} is 21, above the cap of 20"
    assert check("GR-CMP-009", rtype, {}) == f"{where} is not set (unbounded)"


def test_dataproc_worker_cap_counts_primary_and_secondary():
    policy = lambda p, s: {"worker_config": {"max_instances": p}, "secondary_worker_config": {"max_instances": s}}  # noqa: E731
    assert check("GR-CMP-012", "google_dataproc_autoscaling_policy", policy(30, 20)) is None
    assert check("GR-CMP-012", "google_dataproc_autoscaling_policy", policy(30, 21)) == "up to 51 workers, above the cap of 50"
    assert check("GR-CMP-012", "google_dataproc_autoscaling_policy", policy("50", None)) is None
    assert check("GR-CMP-012", "google_dataproc_autoscaling_policy", {"secondary_worker_config": {"max_instances": 1}}) == \
        "worker_config.max_instances is not set (unbounded)"
    cluster = lambda p, s: {"cluster_config": {"worker_config": {"num_instances": p}, "preemptible_worker_config": {"num_instances": s}}}  # noqa: E731
    assert check("GR-CMP-012", "google_dataproc_cluster", cluster(49, 1)) is None
    assert check("GR-CMP-012", "google_dataproc_cluster", cluster(50, 1)) == "up to 51 workers, above the cap of 50"
    assert check("GR-CMP-012", "google_dataproc_cluster", {}) is None  # single node
    unknown = check("GR-CMP-012", "google_dataproc_cluster", cluster("${var.n}", 0))
    assert isinstance(unknown, Unverified) and unknown == "worker counts ['${var.n}', 0] are computed; cannot check the cap of 50"


def test_composer_worker_cap_at_the_limit_passes_one_past_fails():
    env = lambda n: {"config": {"workloads_config": {"worker": {"max_count": n}}}}  # noqa: E731
    assert check("GR-CMP-013", "google_composer_environment", env(10)) is None
    assert check("GR-CMP-013", "google_composer_environment", env(11)) == "config.workloads_config.worker.max_count is 11, above the cap of 10"
    assert check("GR-CMP-013", "google_composer_environment", {"config": {}}) is None  # sized by environment_size


# ---------------------------------------------------------------- network: odd encodings

def firewall(allow, **attrs) -> dict:
    return {"direction": "INGRESS", "allow": allow, **attrs}


@pytest.mark.parametrize("ports, opened", [
    (["0-65535"], "SSH (22), RDP (3389)"),
    (["20-22"], "SSH (22)"),
    (["22-22"], "SSH (22)"),
    (["23-3388"], None),
    (["3389-3390"], "RDP (3389)"),
    (["21", "23"], None),
    (["21", "22"], "SSH (22)"),
    ([], "SSH (22), RDP (3389)"),  # no ports: every port of the protocol
])
def test_admin_ports_opened_by_a_port_range(ports, opened):
    message = check("GR-NET-002", "google_compute_firewall", firewall([{"protocol": "tcp", "ports": ports}], source_ranges=["10.0.0.0/8"]))
    assert message == (f"opens {opened} to 10.0.0.0/8" if opened else None)


@pytest.mark.parametrize("protocol, opens", [("tcp", True), ("TCP", True), ("6", True), ("all", True), ("udp", False),
                                             ("icmp", False), ("17", False)])
def test_admin_ports_by_protocol(protocol, opens):
    message = check("GR-NET-002", "google_compute_firewall", firewall([{"protocol": protocol, "ports": ["22"]}], source_ranges=["10.0.0.0/8"]))
    assert message == ("opens SSH (22) to 10.0.0.0/8" if opens else None)


def test_a_firewall_rule_with_no_source_is_open_to_the_world():
    rule = firewall([{"protocol": "tcp", "ports": ["22"]}])
    assert check("GR-NET-001", "google_compute_firewall", rule) == "allows ingress from 0.0.0.0/0"
    assert check("GR-NET-002", "google_compute_firewall", rule) == "opens SSH (22) to 0.0.0.0/0"
    # a source tag or service account is a source: the rule is then between VMs
    for source in ({"source_tags": ["a"]}, {"source_service_accounts": ["a@p.iam.gserviceaccount.com"]}):
        assert check("GR-NET-001", "google_compute_firewall", {**rule, **source}) is None
        assert check("GR-NET-002", "google_compute_firewall", {**rule, **source}) is None


def test_ssh_only_from_iap_names_every_other_range():
    allow = [{"protocol": "tcp", "ports": ["22"]}]
    assert check("GR-NET-002", "google_compute_firewall", firewall(allow, source_ranges=[IAP])) is None
    assert check("GR-NET-002", "google_compute_firewall", firewall(allow, source_ranges=[IAP, "10.0.0.0/8", "1.2.3.4/32"])) == \
        "opens SSH (22) to 10.0.0.0/8, 1.2.3.4/32"
    assert check("GR-NET-002", "google_compute_firewall", firewall(allow, source_ranges=["${var.range}"])) is None


@pytest.mark.parametrize("attrs", [
    {"direction": "EGRESS"},
    {"disabled": True},
    {"disabled": "true"},
    {"allow": [], "deny": [{"protocol": "all"}]},
])
def test_rules_that_admit_nothing_are_not_judged(attrs):
    rule = {**firewall([{"protocol": "all"}], source_ranges=["0.0.0.0/0"]), **attrs}
    assert check("GR-NET-001", "google_compute_firewall", rule) is None
    assert check("GR-NET-002", "google_compute_firewall", rule) is None


def test_world_ranges_are_named_v4_and_v6():
    rule = firewall([{"protocol": "tcp", "ports": ["443"]}], source_ranges=["::/0", "10.0.0.0/8", "0.0.0.0/0"])
    assert check("GR-NET-001", "google_compute_firewall", rule) == "allows ingress from 0.0.0.0/0, ::/0"
    assert check("GR-NET-001", "google_compute_firewall", {**rule, "direction": None}) == "allows ingress from 0.0.0.0/0, ::/0"


# ---------------------------------------------------------------- IAM: where a role is granted

SA_MEMBER = "serviceAccount:a@p.iam.gserviceaccount.com"


@pytest.mark.parametrize("rtype, level", [("google_project_iam_member", "project"), ("google_folder_iam_member", "folder"),
                                          ("google_organization_iam_member", "organization")])
@pytest.mark.parametrize("role", ["roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator",
                                  "roles/iam.serviceAccountOpenIdTokenCreator", "roles/iam.workloadIdentityUser"])
def test_impersonation_is_refused_above_a_service_account_and_allowed_on_one(rtype, level, role):
    assert check("GR-IAM-004", rtype, {"role": role, "member": SA_MEMBER}) == \
        f"grants {role} at {level} level: every service account becomes usable"
    assert not RULES_BY_ID["GR-IAM-004"].applies_to("google_service_account_iam_member")


def test_impersonation_in_a_project_policy_document_is_read():
    policy = {"policy_data": json.dumps({"bindings": [{"role": "roles/iam.serviceAccountUser", "members": [SA_MEMBER]},
                                                      {"role": "roles/editor", "members": [SA_MEMBER]}]})}
    assert check("GR-IAM-004", "google_project_iam_policy", policy) == \
        "grants roles/iam.serviceAccountUser at project level: every service account becomes usable"
    assert check("GR-IAM-001", "google_project_iam_policy", policy) == "grants basic role roles/editor"
    assert check("GR-IAM-001", "google_project_iam_policy", {"policy_data": "${data.x.policy_data}"}) is None
    assert check("GR-IAM-001", "google_project_iam_policy", {"policy_data": "[1]"}) is None  # not a policy: nothing granted


@pytest.mark.parametrize("rtype", ["google_project_iam_member", "google_storage_bucket_iam_member", "google_bigquery_dataset_iam_member"])
@pytest.mark.parametrize("role", ["roles/owner", "roles/editor", "roles/viewer"])
def test_basic_roles_are_refused_at_every_level(rtype, role):
    assert check("GR-IAM-001", rtype, {"role": role, "member": SA_MEMBER}) == f"grants basic role {role}"


def test_secret_reading_roles_are_refused_project_wide_but_not_on_a_secret():
    for role in ("roles/secretmanager.secretAccessor", "roles/secretmanager.admin"):
        assert check("GR-IAM-010", "google_project_iam_member", {"role": role, "member": SA_MEMBER}) == \
            f"grants {role} project-wide: every secret value becomes readable"
    assert check("GR-IAM-010", "google_project_iam_member", {"role": "roles/secretmanager.viewer", "member": SA_MEMBER}) is None
    assert check("GR-IAM-010", "google_project_iam_member", {"role": "roles/editor", "member": SA_MEMBER}) is None  # GR-IAM-001's
    assert not RULES_BY_ID["GR-IAM-010"].applies_to("google_secret_manager_secret_iam_member")


@pytest.mark.parametrize("members, found", [
    (["allUsers"], "allUsers"),
    (["group:g@acme.example", "allAuthenticatedUsers", "allUsers"], "allAuthenticatedUsers, allUsers"),
    (["user:allUsers@acme.example"], None),
])
def test_public_members_in_bindings(members, found):
    message = check("GR-IAM-002", "google_storage_bucket_iam_binding", {"role": "roles/storage.objectViewer", "members": members})
    assert message == (f"grants access to {found}" if found else None)


@pytest.mark.parametrize("access, found", [
    ([{"role": "READER", "special_group": "allAuthenticatedUsers"}], "allAuthenticatedUsers"),
    ([{"role": "READER", "iam_member": "allUsers"}], "allUsers"),
    ([{"role": "READER", "special_group": "projectReaders"}], None),
    ({"role": "READER", "special_group": "allAuthenticatedUsers"}, None),  # not a list: nothing to read
])
def test_public_access_on_a_dataset(access, found):
    assert check("GR-IAM-002", "google_bigquery_dataset", {"access": access}) == (f"grants access to {found}" if found else None)
    single = access[0] if isinstance(access, list) else {}
    assert check("GR-IAM-002", "google_bigquery_dataset_access", single) == (f"grants access to {found}" if found else None)


POOL = "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/github"


@pytest.mark.parametrize("member, whole", [(f"{POOL}/*", True), (f"{POOL}/*/", True), (f"{POOL}/attribute.repository_id/812345678", False),
                                           ("principal://iam.googleapis.com/x/subject/*", False)])
def test_impersonation_by_a_whole_pool(member, whole):
    message = check("GR-IAM-011", "google_service_account_iam_member", {"role": "roles/iam.workloadIdentityUser", "member": member})
    assert message == (f"grants impersonation to every identity of a pool: {member}" if whole else None)
    assert check("GR-IAM-011", "google_service_account_iam_member", {"role": "roles/iam.serviceAccountViewer", "member": member}) is None


@pytest.mark.parametrize("condition, message", [
    ("assertion.repository_id == '812345678' && assertion.repository_owner_id == '98765432'", None),
    ('assertion.repository_id=="812345678"&&assertion.repository_owner_id=="98765432"', None),
    ("assertion.repository_id == '812345678'", "does not pin repository_owner_id"),
    ("assertion.repository == 'acme/data' && assertion.repository_owner_id == '98765432'", "does not pin repository_id"),
    ("", "does not pin repository_id and repository_owner_id"),
    ("assertion.repository_id == 'acme' && assertion.repository_owner_id == '98765432'", "does not pin repository_id"),
    ("assertion.repository_id == '812345678' && assertion.repository_owner_id == '98765432' || true", "has an alternative"),
    ("assertion.repository_id == '812345678' && assertion.repository_owner_id == '98765432'||true", "has an alternative"),
])
def test_github_provider_pins(condition, message):
    attrs = {"oidc": {"issuer_uri": "https://token.actions.githubusercontent.com"}, "attribute_condition": condition}
    found = check("GR-IAM-007", "google_iam_workload_identity_pool_provider", attrs)
    if message is None:
        assert found is None
    elif message == "has an alternative":
        assert found == f"attribute_condition {condition!r} has an alternative (||) that can bypass the pins"
    else:
        assert found == f"attribute_condition {condition!r} {message}"
    other = {"oidc": {"issuer_uri": "https://gitlab.com"}, "attribute_condition": ""}
    assert check("GR-IAM-007", "google_iam_workload_identity_pool_provider", other) is None
    assert check("GR-IAM-007", "google_iam_workload_identity_pool_provider", {**attrs, "attribute_condition": "${var.c}"}) is None


@pytest.mark.parametrize("expression, limited", [
    ("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(['roles/bigquery.jobUser'])", True),
    ('api.getAttribute("iam.googleapis.com/modifiedGrantsByRole",[]).hasOnly(["roles/bigquery.jobUser"])', True),
    ("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasAny(['roles/owner'])", False),
    ("true", False),
])
def test_role_granting_roles_need_a_limiting_condition(expression, limited):
    grant = {"role": "roles/resourcemanager.projectIamAdmin", "member": SA_MEMBER, "condition": {"expression": expression}}
    assert check("GR-IAM-009", "google_project_iam_member", grant) == \
        (None if limited else "grants roles/resourcemanager.projectIamAdmin without a modifiedGrantsByRole hasOnly condition")
    assert check("GR-IAM-009", "google_project_iam_member", {"role": "roles/iam.securityAdmin", "member": SA_MEMBER}) == \
        "grants roles/iam.securityAdmin without a modifiedGrantsByRole hasOnly condition"
    assert check("GR-IAM-009", "google_project_iam_member", {"role": "roles/storage.admin", "member": SA_MEMBER}) is None


def test_service_accounts_live_only_in_a_bootstrap_stack():
    rule = RULES_BY_ID["GR-IAM-008"]
    assert rule.check(Target("google_service_account", {}, path="dev-bootstrap/identities/etl")) is None
    assert rule.check(Target("google_service_account", {}, path="dev-platform/identities/etl")) == \
        "google_service_account in stack 'dev-platform'"
    assert rule.check(Target("google_service_account_iam_member", {}, path="etl")) is None  # a logical id: no stack known


def test_project_grants_need_a_reason():
    rule = RULES_BY_ID["GR-IAM-006"]
    grant = {"role": "roles/bigquery.jobUser", "member": SA_MEMBER}
    assert rule.check(Target("google_project_iam_member", grant, metadata={"project_scope_reason": "jobs run in the project"})) is None
    assert rule.check(Target("google_project_iam_member", grant)) == "project-level roles/bigquery.jobUser has no recorded reason"
    assert rule.check(Target("google_project_iam_member", grant, metadata={"project_scope_reason": ""})) == \
        "project-level roles/bigquery.jobUser has no recorded reason"


@pytest.mark.parametrize("rtype, message", [
    ("google_project_iam_binding", "google_project_iam_binding replaces every other grant of its role"),
    ("google_project_iam_policy", "google_project_iam_policy replaces every other grant of the whole policy"),
    ("google_folder_iam_binding", "google_folder_iam_binding replaces every other grant of its role"),
])
def test_authoritative_iam_above_a_resource_is_refused(rtype, message):
    assert check("GR-IAM-005", rtype, {}) == message
    assert not RULES_BY_ID["GR-IAM-005"].applies_to("google_project_iam_member")
    assert not RULES_BY_ID["GR-IAM-005"].applies_to("google_storage_bucket_iam_binding")


# ---------------------------------------------------------------- data: Dataplex and BigQuery limits

def scan(*rules, sampling=None) -> dict:
    spec = {"rules": list(rules)}
    if sampling is not None:
        spec["sampling_percent"] = sampling
    return {"data_quality_spec": spec}


@pytest.mark.parametrize("name, ok", [("a", True), ("a" * 63, True), ("a" * 64, False), ("a-1", True), ("1a", False),
                                      ("a-", False), ("a_b", False), ("A9", True)])
def test_dataplex_rule_name_limits(name, ok):
    rule = {"name": name, "non_null_expectation": {}, "column": "id"}
    assert check("GR-DAT-006", "google_dataplex_datascan", scan(rule)) == (None if ok else f"rule name {name!r} is invalid")


def test_dataplex_rule_names_invalid_and_twice_are_both_reported():
    rules = [{"name": "a-1"}, {"name": "a-1"}, {"name": "_x"}, {"name": "${var.n}"}, {}]
    assert check("GR-DAT-006", "google_dataplex_datascan", scan(*rules)) == "rule name '_x' is invalid; rule name 'a-1' is used twice"


@pytest.mark.parametrize("threshold, ok", [(0, True), (1, True), (0.5, True), (1.0001, False), (-0.0001, False), ("${var.t}", True)])
def test_dataplex_threshold_range(threshold, ok):
    rule = {"name": "r", "range_expectation": {"min_value": "0"}, "threshold": threshold}
    assert check("GR-DAT-007", "google_dataplex_datascan", scan(rule)) == (None if ok else f"rule 'r': threshold {threshold} outside [0, 1]")


@pytest.mark.parametrize("sampling, ok", [(0, True), (100, True), (100.001, False), (-0.001, False), ("50", True)])
def test_dataplex_sampling_range(sampling, ok):
    assert check("GR-DAT-007", "google_dataplex_datascan", scan(sampling=sampling)) == \
        (None if ok else f"data_quality_spec.sampling_percent {sampling} outside [0, 100]")
    profile = {"data_profile_spec": {"sampling_percent": sampling}}
    assert check("GR-DAT-007", "google_dataplex_datascan", profile) == \
        (None if ok else f"data_profile_spec.sampling_percent {sampling} outside [0, 100]")


@pytest.mark.parametrize("expectation, threshold_ok, ignore_null_ok", [
    ("non_null_expectation", True, False), ("range_expectation", True, True), ("regex_expectation", True, True),
    ("set_expectation", True, True), ("row_condition_expectation", True, False), ("uniqueness_expectation", False, True),
    ("table_condition_expectation", False, False), ("statistic_range_expectation", False, False),
])
def test_dataplex_threshold_and_ignore_null_by_expectation(expectation, threshold_ok, ignore_null_ok):
    with_threshold = {"name": "r", expectation: {}, "threshold": 0.9}
    assert check("GR-DAT-007", "google_dataplex_datascan", scan(with_threshold)) == \
        (None if threshold_ok else f"rule 'r': threshold on a {expectation}")
    ignoring = {"name": "r", expectation: {}, "ignore_null": True}
    assert check("GR-DAT-007", "google_dataplex_datascan", scan(ignoring)) == \
        (None if ignore_null_ok else f"rule 'r': ignore_null on a {expectation}")
    assert check("GR-DAT-007", "google_dataplex_datascan", scan({"name": "r", expectation: {}, "ignore_null": False})) is None


def test_dataplex_threshold_without_expectation():
    assert check("GR-DAT-007", "google_dataplex_datascan", scan({"name": "r", "threshold": 0.5, "range_expectation": None})) == \
        "rule 'r': threshold on a rule without expectation"


SCHEMA = json.dumps([{"name": "id", "type": "STRING"}, {"name": "n", "type": "integer"}, {"name": "at", "type": "TIMESTAMP"},
                     {"name": "day", "type": "DATE"}, {"name": "ok", "type": "BOOLEAN"}, {"name": "score", "type": "FLOAT"}])


@pytest.mark.parametrize("columns, message", [
    (["id", "n", "day", "ok"], None),
    (["id", "n", "day", "ok", "at"], "cluster_by has 5 columns; BigQuery clusters on at most 4"),
    (["id", "id"], "cluster_by repeats a column"),
    (["score"], "cluster_by 'score' is FLOAT; BigQuery cannot cluster on that type"),
    (["nope"], "cluster_by 'nope' is not a column of the schema"),
    (["n"], None),  # the schema's type is read case-insensitively
])
def test_clustering_limits(columns, message):
    assert check("GR-DAT-009", "google_bigquery_table", {"schema": SCHEMA, "clustering": columns}) == message


@pytest.mark.parametrize("field, granularity, message", [
    ("at", "HOUR", None), ("day", "DAY", None), ("day", "HOUR", "partition_by 'day' is a DATE: HOUR partitions need a TIMESTAMP or DATETIME column"),
    ("id", "DAY", "partition_by 'id' is STRING; BigQuery partitions on TIMESTAMP, DATE or DATETIME columns"),
    ("nope", "DAY", "partition_by 'nope' is not a column of the schema"),
])
def test_partition_column(field, granularity, message):
    assert check("GR-DAT-008", "google_bigquery_table", {"schema": SCHEMA, "time_partitioning": {"type": granularity, "field": field}}) == message


@pytest.mark.parametrize("partitioning", [{"type": "DAY"}, {"type": "DAY", "field": ""}, {"type": "DAY", "field": "${var.column}"}])
def test_ingestion_time_and_computed_partitions_pass(partitioning):
    """No field: BigQuery partitions by ingestion time, whatever the schema holds."""
    assert check("GR-DAT-008", "google_bigquery_table", {"schema": SCHEMA, "time_partitioning": partitioning}) is None


def test_a_dataset_without_delete_contents_keeps_its_tables():
    """Unset, delete_contents_on_destroy is false (the provider's default)."""
    assert check("GR-DAT-002", "google_bigquery_dataset", {"dataset_id": "d"}) is None
    assert check("GR-DAT-002", "google_bigquery_dataset", {"dataset_id": "d", "delete_contents_on_destroy": "true"}) == \
        "delete_contents_on_destroy is true"


def test_the_caps_cannot_be_raised_at_run_time():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError, match="dataflow_max_workers"):
        CAPS.dataflow_max_workers = 500  # type: ignore[misc]


@pytest.mark.parametrize("schema", ["${var.schema}", "not json", json.dumps({"name": "x"}), None])
def test_table_rules_warn_when_the_schema_is_not_readable(schema):
    attrs = {"schema": schema, "clustering": ["id"], "time_partitioning": {"field": "at"}}
    partition = check("GR-DAT-008", "google_bigquery_table", attrs)
    clustering = check("GR-DAT-009", "google_bigquery_table", attrs)
    if isinstance(schema, str) and schema.startswith("{"):  # a JSON object, not a list of fields: nothing declared
        assert (partition, clustering) == ("partition_by 'at' is not a column of the schema", "cluster_by 'id' is not a column of the schema")
        return
    assert isinstance(partition, Unverified) and partition == "time_partitioning.field 'at': schema not readable at synth"
    assert isinstance(clustering, Unverified) and clustering == "clustering: schema not readable at synth"


@pytest.mark.parametrize("replication, automatic", [
    ({"auto": {}}, True), ({"user_managed": {"replicas": [{"location": "europe-west1"}]}}, False),
    ({"user_managed": {"replicas": []}}, True), ({}, True), ([{"user_managed": [{"replicas": [{"location": "x"}]}]}], False),
])
def test_secret_replication(replication, automatic):
    assert check("GR-DAT-010", "google_secret_manager_secret", {"replication": replication}) == \
        ("replication is automatic (any region)" if automatic else None)


@pytest.mark.parametrize("value, refused", [(False, True), ("false", True), ("FALSE", True), (True, False), (None, False), ("true", False)])
def test_table_deletion_protection_encodings(value, refused):
    attrs = {} if value is None else {"deletion_protection": value}
    assert check("GR-DAT-001", "google_bigquery_table", attrs) == ("deletion_protection is false" if refused else None)


def test_data_buckets_are_those_that_tier():
    tiering = {"lifecycle_rule": [{"action": {"type": "SetStorageClass", "storage_class": "NEARLINE"}, "condition": {"age": 90}}]}
    assert check("GR-DAT-004", "google_storage_bucket", tiering) == "data bucket without lifecycle.prevent_destroy"
    assert check("GR-DAT-004", "google_storage_bucket", {**tiering, "lifecycle": {"prevent_destroy": True}}) is None
    scratch = {"lifecycle_rule": [{"action": {"type": "Delete"}, "condition": {"age": 7}}]}
    assert check("GR-DAT-004", "google_storage_bucket", scratch) is None


# ---------------------------------------------------------------- names: a trailing newline is not a valid name

@pytest.mark.parametrize("rule_id, rtype, attribute, value", [
    ("GR-NAM-001", "google_storage_bucket", "name", "acme-dev-landing-123"),
    ("GR-NAM-002", "google_service_account", "account_id", "acme-dev-etl"),
    ("GR-NAM-005", "google_compute_network", "name", "acme-dev-net"),
    ("GR-NAM-007", "google_project_iam_custom_role", "role_id", "acme_dev.ci_plan"),
])
def test_a_name_with_a_trailing_newline_is_refused(rule_id, rtype, attribute, value):
    assert check(rule_id, rtype, {attribute: value}) is None
    assert check(rule_id, rtype, {attribute: value + "\n"}).startswith(f"{attribute} {value + chr(10)!r} is invalid: expected ")


def test_patterns_of_other_rules_match_whole_values():
    assert check("GR-DAT-006", "google_dataplex_datascan", scan({"name": "a-1\n"})) == "rule name 'a-1\\n' is invalid"
    version = "projects/p/secrets/s/versions/1"
    connection = lambda v: {"github_config": {"authorizer_credential": {"oauth_token_secret_version": v}}}  # noqa: E731
    assert check("GR-CI-001", "google_cloudbuildv2_connection", connection(version)) is None
    assert check("GR-CI-001", "google_cloudbuildv2_connection", connection(version + "\n")) == \
        f"token version {version + chr(10)!r} is not a pinned projects/<p>/secrets/<id>/versions/<number>"


# ---------------------------------------------------------------- labels, audit logs, CI



def labelled(labels) -> Target:
    return Target("google_storage_bucket", {"labels": labels}, path="s/b", label_attribute="labels")


@pytest.mark.parametrize("extra, problem", [
    ({f"k{i}": "v" for i in range(60)}, None),  # 64 labels: the limit
    ({f"k{i}": "v" for i in range(61)}, "65 labels (max 64)"),
    ({"k" * 63: "v"}, None), ({"k" * 64: "v"}, f"key {'k' * 64!r}"),
    ({"k": "v" * 63}, None), ({"k": "v" * 64}, f"k={'v' * 64!r}"),
    ({"k": ""}, None), ({"K": "v"}, "key 'K'"), ({"k": "V"}, "k='V'"), ({"k": 1}, "k=1"),
    ({"${var.k}": "${var.v}"}, None),
])
def test_label_limits(extra, problem):
    message = RULES_BY_ID["GR-LBL-002"].check(labelled({**LABELS, **extra}))
    assert message == (f"invalid labels: {problem}" if problem else None)


def test_required_labels():
    rule = RULES_BY_ID["GR-LBL-001"]
    assert rule.check(labelled(LABELS)) is None
    assert rule.check(labelled({"owner": "a"})) == "labels lacks cost_center, env, managed_by"
    assert rule.check(labelled(None)) == "labels lacks owner, cost_center, env, managed_by"
    computed_labels = rule.check(labelled("${var.labels}"))
    assert isinstance(computed_labels, Unverified) and computed_labels == "labels is computed ('${var.labels}')"
    assert rule.check(Target("google_storage_bucket", {"labels": {}}, path="s/b")) is None  # no label attribute: not labelable
    assert RULES_BY_ID["GR-LBL-002"].check(Target("google_storage_bucket", {"labels": {"K": "v"}}, path="s/b")) is None


@pytest.mark.parametrize("configs, message", [
    ([{"log_type": "ADMIN_READ"}, {"log_type": "DATA_READ"}, {"log_type": "DATA_WRITE"}], None),
    ([{"log_type": "ADMIN_READ"}, {"log_type": "DATA_WRITE"}], "secretmanager.googleapis.com: no DATA_READ logs"),
    ([], "secretmanager.googleapis.com: no ADMIN_READ, DATA_READ, DATA_WRITE logs"),
    ([{"log_type": "ADMIN_READ"}, {"log_type": "DATA_READ", "exempted_members": ["user:b@x", "user:a@x"]}, {"log_type": "DATA_WRITE"}],
     "exempts user:a@x, user:b@x"),
    ([{"log_type": "DATA_READ", "exempted_members": ["user:a@x"]}], "secretmanager.googleapis.com: no ADMIN_READ, DATA_WRITE logs; exempts user:a@x"),
])
def test_audit_configs(configs, message):
    assert check("GR-LOG-001", "google_project_iam_audit_config",
                 {"service": "secretmanager.googleapis.com", "audit_log_config": configs}) == message


@pytest.mark.parametrize("version, message", [
    ("projects/p/secrets/s/versions/1", None),
    ("projects/p/secrets/s/versions/latest", "is not a pinned projects/<p>/secrets/<id>/versions/<number>"),
    ("${google_secret_manager_secret_version.v.id}", "refers to a secret created in this stack"),
    ("${google_secret_manager_secret.s.id}/versions/1", "refers to a secret created in this stack"),
    ("${var.version}", None),
])
def test_connection_token_versions(version, message):
    for block_name, key in (("github_config", "oauth_token_secret_version"), ("github_enterprise_config", "user_token_secret_version"),
                            ("gitlab_config", "user_token_secret_version")):
        attrs = {block_name: {"authorizer_credential": {key: version}}}
        assert check("GR-CI-001", "google_cloudbuildv2_connection", attrs) == (f"token version {version!r} {message}" if message else None)


@pytest.mark.parametrize("account, message", [
    (None, "no service_account: the build runs as a default account"),
    ("projects/p/serviceAccounts/123-compute@developer.gserviceaccount.com", "runs as the Compute Engine default account"),
    ("projects/p/serviceAccounts/acme-dev-build@p.iam.gserviceaccount.com", None),
])
def test_build_trigger_identity(account, message):
    assert check("GR-CI-002", "google_cloudbuild_trigger", {} if account is None else {"service_account": account}) == message


# ---------------------------------------------------------------- SLOs, flow logs, soft delete

@pytest.mark.parametrize("goal, ok", [(0.999, True), (0.0001, True), (0.9991, False), (1.0, False), (0, False), (-0.5, False),
                                      (True, False), ("0.99", False), ("${var.goal}", True)])
def test_slo_goal_range(goal, ok):
    message = check("GR-SLO-001", "google_monitoring_slo", {"goal": goal, "rolling_period_days": 28})
    assert message == (None if ok else f"goal is {goal!r}, outside (0, 0.999]")


@pytest.mark.parametrize("attrs, message", [
    ({"rolling_period_days": 30}, None), ({"rolling_period_days": 1}, None), ({"rolling_period_days": 7.0}, None),
    ({"rolling_period_days": "7"}, None),
    ({"rolling_period_days": 31}, "rolling_period_days is 31, not a whole number of days in 1-30"),
    ({"rolling_period_days": 0}, "rolling_period_days is 0, not a whole number of days in 1-30"),
    ({"rolling_period_days": 7.5}, "rolling_period_days is 7.5, not a whole number of days in 1-30"),
    ({"rolling_period_days": True}, "rolling_period_days is True, not a whole number of days in 1-30"),
    ({"calendar_period": "MONTH"}, None), ({"calendar_period": "FORTNIGHT"}, None),
    ({"calendar_period": "YEAR"}, "calendar_period is 'YEAR', not one of DAY, WEEK, FORTNIGHT, MONTH"),
    ({}, "set exactly one of rolling_period_days and calendar_period"),
    ({"rolling_period_days": 7, "calendar_period": "WEEK"}, "set exactly one of rolling_period_days and calendar_period"),
])
def test_slo_period(attrs, message):
    assert check("GR-SLO-002", "google_monitoring_slo", {"goal": 0.99, **attrs}) == message


@pytest.mark.parametrize("filters, message", [
    (("good_service_filter", "total_service_filter"), None), (("bad_service_filter", "total_service_filter"), None),
    (("good_service_filter",), "good_total_ratio names 1 filter(s) (good_service_filter), not 2"),
    ((), "good_total_ratio names 0 filter(s) (none), not 2"),
    (("good_service_filter", "bad_service_filter", "total_service_filter"),
     "good_total_ratio names 3 filter(s) (good_service_filter, bad_service_filter, total_service_filter), not 2"),
])
def test_slo_ratio_filters(filters, message):
    sli = {"good_total_ratio": {f: "metric.type=\"x\"" for f in filters} or {"good_service_filter": ""}}
    assert check("GR-SLO-003", "google_monitoring_slo", {"request_based_sli": sli}) == message
    assert check("GR-SLO-003", "google_monitoring_slo", {"windows_based_sli": {}}) is None


def condition(**threshold) -> dict:
    return {"conditions": [{"display_name": "c", "condition_threshold": threshold}]}


def test_slo_conditions_take_no_aggregations_and_a_known_lookback_unit():
    slo = 'select_slo_burn_rate("projects/p/services/s/serviceLevelObjectives/o", "3600s")'
    assert check("GR-SLO-004", "google_monitoring_alert_policy", condition(filter=slo)) is None
    assert check("GR-SLO-004", "google_monitoring_alert_policy", condition(filter=slo, aggregations=[{"alignment_period": "60s"}])) == \
        "condition 'c': an SLO selector takes no aggregations"
    assert check("GR-SLO-004", "google_monitoring_alert_policy", condition(filter=slo, denominator_filter="x")) == \
        "condition 'c': an SLO selector takes no aggregations"
    assert check("GR-SLO-004", "google_monitoring_alert_policy", condition(filter=slo.replace("3600s", "1d"))) == \
        "condition 'c': lookback '1d' is not a number with unit ns, us, ms, s, m or h"
    no_lookback = 'select_slo_health("projects/p/services/s/serviceLevelObjectives/o")'
    assert check("GR-SLO-004", "google_monitoring_alert_policy", condition(filter=no_lookback)) is None
    metric = condition(filter='metric.type="x"', aggregations=[{"alignment_period": "60s"}])
    assert check("GR-SLO-004", "google_monitoring_alert_policy", metric) is None


@pytest.mark.parametrize("period, ok", [("60s", True), ("59s", False), ("90000s", True), ("90001s", False), ("60.5s", True),
                                        ("1m", False), ("${var.p}", True)])
def test_alignment_period_limits(period, ok):
    policy = condition(filter='metric.type="x"', aggregations=[{"alignment_period": period}])
    assert check("GR-SLO-005", "google_monitoring_alert_policy", policy) == \
        (None if ok else f"condition 'c': alignment_period {period!r} outside 60s-90000s")
    absent = {"conditions": [{"display_name": "a", "condition_absent": {"duration": "600s", "aggregations": [{"alignment_period": period}]}}]}
    assert check("GR-SLO-005", "google_monitoring_alert_policy", absent) == \
        (None if ok else f"condition 'a': alignment_period {period!r} outside 60s-90000s")


@pytest.mark.parametrize("duration, ok", [("60s", True), ("120s", True), ("0s", False), ("59s", False), ("90s", False),
                                          ("60.5s", False), ("10m", False), ("${var.d}", True)])
def test_absence_durations(duration, ok):
    policy = {"conditions": [{"display_name": "a", "condition_absent": {"duration": duration}}]}
    assert check("GR-SLO-006", "google_monitoring_alert_policy", policy) == \
        (None if ok else f"condition 'a': condition_absent.duration {duration!r} is not a whole number of minutes")


def test_every_condition_of_a_policy_is_checked():
    """A first condition that is not about an SLO (or has no absence) does not end the check."""
    slo = 'select_slo_burn_rate("projects/p/services/s/serviceLevelObjectives/o", "3600s")'
    policy = {"conditions": [{"display_name": "metric", "condition_threshold": {"filter": 'metric.type="x"'}},
                             {"display_name": "burn", "condition_threshold": {"filter": slo, "aggregations": [{"alignment_period": "60s"}]}}]}
    assert check("GR-SLO-004", "google_monitoring_alert_policy", policy) == "condition 'burn': an SLO selector takes no aggregations"
    policy = {"conditions": [{"display_name": "threshold", "condition_threshold": {"filter": 'metric.type="x"'}},
                             {"display_name": "absent", "condition_absent": {"duration": "90s"}}]}
    assert check("GR-SLO-006", "google_monitoring_alert_policy", policy) == \
        "condition 'absent': condition_absent.duration '90s' is not a whole number of minutes"


def mosaic(*tiles: dict, columns: object = 48) -> dict:
    return {"dashboard_json": json.dumps({"displayName": "d", "mosaicLayout": {"columns": columns, "tiles": list(tiles)}})}


def tile(x: int = 0, y: int = 0, w: int | None = 1, h: int | None = 1) -> dict:
    out = {"xPos": x, "yPos": y, "widget": {}}
    if w is not None:
        out["width"] = w
    if h is not None:
        out["height"] = h
    return out


@pytest.mark.parametrize("t, columns, ok", [
    (tile(), 48, True), (tile(), 1, True), (tile(x=47), 48, True), (tile(x=47, w=2), 48, False), (tile(x=0, w=48), 48, True),
    (tile(x=-1), 48, False), (tile(y=-1), 48, False), (tile(w=0), 48, False), (tile(h=0), 48, False),
    (tile(x=-1, y=0, w=4), 48, False), (tile(y=-1, w=4), 48, False), (tile(w=0, h=4), 48, False),
    (tile(w=None), 48, False), (tile(h=None), 48, False),
])
def test_dashboard_tiles_fit_the_grid(t, columns, ok):
    message = check("GR-SLO-008", "google_monitoring_dashboard", mosaic(t, columns=columns))
    x, y, w, h = (t.get(k, 0) for k in ("xPos", "yPos", "width", "height"))
    assert message == (None if ok else f"tile 0 ({x},{y} {w}x{h}) does not fit {columns} columns")


@pytest.mark.parametrize("columns, ok", [(1, True), (48, True), (0, False), (49, False), ("48", False)])
def test_dashboard_columns_at_the_limits(columns, ok):
    message = check("GR-SLO-008", "google_monitoring_dashboard", mosaic(columns=columns))
    assert message == (None if ok else f"mosaicLayout.columns is {columns!r}, not 1-48")


def test_dashboard_json_must_parse():
    message = check("GR-SLO-008", "google_monitoring_dashboard", {"dashboard_json": '{"mosaicLayout": '})
    assert message == "dashboard_json is not JSON (Expecting value: line 1 column 18 (char 17))"
    assert check("GR-SLO-008", "google_monitoring_dashboard", {"dashboard_json": json.dumps({"gridLayout": {}})}) is None


def test_a_bucket_without_force_destroy_is_kept():
    """Unset, force_destroy is false (the provider's default)."""
    assert check("GR-STO-004", "google_storage_bucket", {"name": "b"}) is None
    assert check("GR-STO-004", "google_storage_bucket", {"name": "b", "force_destroy": "true"}) == "force_destroy is true"


@pytest.mark.parametrize("uri, direct", [
    ("https://dataflow.googleapis.com/v1b3/projects/p/locations/r/flexTemplates:launch", True),
    ("https://dataflow.googleapis.com/v1b3/projects/p/locations/r/templates:launch", True),
    ("https://dataflow.googleapis.com/v1b3/projects/p/locations/r/jobs", True),
    ("https://cloudtasks.googleapis.com/v2/projects/p/locations/r/queues/q/tasks", False),
    ("https://run.googleapis.com/v2/projects/p/locations/r/jobs", False),  # another API's jobs
    ("https://workflowexecutions.googleapis.com/v1/projects/p/locations/r/workflows/templates", False),
])
def test_scheduler_never_calls_dataflow_directly(uri, direct):
    message = check("GR-PRC-003", "google_cloud_scheduler_job", {"http_target": {"uri": uri}})
    assert message == (f"Cloud Scheduler calls Dataflow directly ({uri})" if direct else None)


@pytest.mark.parametrize("sampling, ok", [(1, True), (0.000001, True), (0, False), (1.000001, False), (-0.5, False), ("${var.s}", True)])
def test_flow_log_sampling_range(sampling, ok):
    subnet = {"log_config": {"flow_sampling": sampling, "aggregation_interval": "INTERVAL_5_MIN"}}
    assert check("GR-NET-009", "google_compute_subnetwork", subnet) == (None if ok else f"flow_sampling {sampling} outside (0, 1]")


@pytest.mark.parametrize("log_config, message", [
    ({"aggregation_interval": "INTERVAL_1_HOUR"}, "aggregation_interval 'INTERVAL_1_HOUR' is not one of INTERVAL_10_MIN, INTERVAL_15_MIN, "
     "INTERVAL_1_MIN, INTERVAL_30_SEC, INTERVAL_5_MIN, INTERVAL_5_SEC"),
    ({"metadata": "CUSTOM_METADATA"}, "metadata_fields go with metadata = CUSTOM_METADATA, and only with it"),
    ({"metadata": "INCLUDE_ALL_METADATA", "metadata_fields": ["src_vpc"]}, "metadata_fields go with metadata = CUSTOM_METADATA, and only with it"),
    ({"metadata": "CUSTOM_METADATA", "metadata_fields": ["src_vpc"]}, None),
    ({"flow_sampling": 0, "metadata": "CUSTOM_METADATA"}, "flow_sampling 0 outside (0, 1]; metadata_fields go with metadata = CUSTOM_METADATA, and only with it"),
])
def test_flow_log_fields(log_config, message):
    assert check("GR-NET-009", "google_compute_subnetwork", {"log_config": log_config}) == message
    assert check("GR-NET-009", "google_compute_subnetwork", {}) is None  # GR-NET-004 reports a subnet without flow logs


@pytest.mark.parametrize("seconds, warned", [(0, True), ("0", True), (1, False), (604800, False), ("${var.s}", False), (None, False)])
def test_soft_delete_disabled_only_at_zero(seconds, warned):
    attrs = {} if seconds is None else {"soft_delete_policy": {"retention_duration_seconds": seconds}}
    assert check("GR-STO-006", "google_storage_bucket", attrs) == ("soft delete is disabled (retention 0)" if warned else None)


@pytest.mark.parametrize("rules, expires", [
    ([{"action": {"type": "Delete"}, "condition": {"age": 7}}], True),
    ([{"action": {"type": "Delete"}, "condition": {"with_state": "ARCHIVED", "age": 7}}], False),
    ([{"action": {"type": "Delete"}, "condition": {"num_newer_versions": 3}}], False),
    ([{"action": {"type": "Delete"}, "condition": {"days_since_noncurrent_time": 30}}], False),
    ([{"action": {"type": "Delete"}, "condition": {"noncurrent_time_before": "2026-01-01"}}], False),
    ([{"action": {"type": "SetStorageClass"}, "condition": {"age": 7}}], False),
    ([{"action": {"type": "Delete"}, "condition": {"days_since_noncurrent_time": 30}}, {"action": {"type": "Delete"}, "condition": {"age": 1}}], True),
])
def test_unversioned_buckets_must_expire_live_objects(rules, expires):
    message = check("GR-STO-005", "google_storage_bucket", {"lifecycle_rule": rules, "versioning": {"enabled": False}})
    assert message == (None if expires else "bucket keeps objects forever but versioning is not enabled")
    assert check("GR-STO-005", "google_storage_bucket", {"lifecycle_rule": rules, "versioning": {"enabled": True}}) is None


# ---------------------------------------------------------------- compute: VM hardening encodings

@pytest.mark.parametrize("shielded, message", [
    ({"enable_secure_boot": True}, None), ({"enable_secure_boot": "true"}, None),
    ({"enable_secure_boot": True, "enable_vtpm": False}, "vTPM or integrity monitoring is switched off"),
    ({"enable_secure_boot": True, "enable_integrity_monitoring": False}, "vTPM or integrity monitoring is switched off"),
    ({"enable_secure_boot": False}, "secure boot is not enabled"), ({}, "secure boot is not enabled"),
])
def test_shielded_vm(shielded, message):
    assert check("GR-CMP-001", "google_compute_instance", {"shielded_instance_config": shielded}) == message


@pytest.mark.parametrize("metadata, rule_id, message", [
    ({"enable-oslogin": "TRUE"}, "GR-CMP-002", None), ({"enable-oslogin": "true"}, "GR-CMP-002", None),
    ({"enable-oslogin": "FALSE"}, "GR-CMP-002", "metadata enable-oslogin is not TRUE"), ({}, "GR-CMP-002", "metadata enable-oslogin is not TRUE"),
    ({"serial-port-enable": "TRUE"}, "GR-CMP-003", "metadata serial-port-enable is TRUE"), ({"serial-port-enable": "FALSE"}, "GR-CMP-003", None),
    ({}, "GR-CMP-003", None),
    ({"block-project-ssh-keys": "TRUE"}, "GR-CMP-004", None), ({}, "GR-CMP-004", "block-project-ssh-keys is not TRUE"),
])
def test_vm_metadata(metadata, rule_id, message):
    for rtype in ("google_compute_instance", "google_compute_instance_template", "google_compute_region_instance_template"):
        assert check(rule_id, rtype, {"metadata": metadata}) == message


@pytest.mark.parametrize("rtype, attrs, path", [
    ("google_compute_instance", {"service_account": {"email": "{}"}}, "service_account.email"),
    ("google_dataproc_cluster", {"cluster_config": {"gce_cluster_config": {"service_account": "{}"}}}, "cluster_config.gce_cluster_config.service_account"),
    ("google_composer_environment", {"config": {"node_config": {"service_account": "{}"}}}, "config.node_config.service_account"),
    ("google_cloudfunctions2_function", {"service_config": {"service_account_email": "{}"}}, "service_config.service_account_email"),
    ("google_cloudfunctions_function", {"service_account_email": "{}"}, "service_account_email"),
    ("google_cloud_run_v2_service", {"template": {"service_account": "{}"}}, "template.service_account"),
])
def test_workloads_run_as_their_own_account(rtype, attrs, path):
    with_email = lambda email: json.loads(json.dumps(attrs).replace("{}", email))  # noqa: E731
    assert check("GR-CMP-005", rtype, with_email("etl@p.iam.gserviceaccount.com")) is None
    assert check("GR-CMP-005", rtype, with_email("123-compute@developer.gserviceaccount.com")) == \
        "runs as the default compute service account 123-compute@developer.gserviceaccount.com"
    assert check("GR-CMP-005", rtype, {}) == f"{path} is not set: the default compute service account would be used"


@pytest.mark.parametrize("config, private", [
    ({"enable_private_environment": True}, True), ({"private_environment_config": {"enable_private_endpoint": True}}, True),
    ({"enable_private_environment": False}, False), ({}, False),
])
def test_composer_private(config, private):
    assert check("GR-CMP-008", "google_composer_environment", {"config": config}) == \
        (None if private else "neither config.enable_private_environment nor private_environment_config.enable_private_endpoint is true")


@pytest.mark.parametrize("value, seconds", [("600s", 600), ("0s", 0), ("600", None), ("10m", None), ("s", None), (600, None),
                                            ("6xs", None), ("60.5s", 60.5), ("0.123456789s", 0.123456789), ("0.1234567891s", None),
                                            ("-5s", -5), ("5.s", None), (".5s", None), ("${var.ttl}", None)])
def test_duration_seconds(value, seconds):
    """The protobuf Duration JSON form, as every rule reads it: up to nine fractional digits, one past is not one."""
    from dataplatform.guardrails.rule import duration_seconds

    assert duration_seconds(value) == seconds


# ---------------------------------------------------------------- compute: exact messages of the day-one rules

def dataproc(**groups) -> dict:
    return {"cluster_config": {name: {"machine_type": machine, "accelerators": [{"accelerator_type": "nvidia-tesla-t4", "accelerator_count": 1}]}
                               for name, machine in groups.items()}}


def test_gpu_machine_messages_name_every_group():
    attrs = dataproc(master_config="n1-standard-8", worker_config="g2-standard-8", preemptible_worker_config="n2-standard-8")
    assert check("GR-CMP-014", "google_dataproc_cluster", attrs) == (
        "cluster_config.worker_config is 'g2-standard-8', which has built-in GPUs; "
        "cluster_config.preemptible_worker_config is 'n2-standard-8', which cannot take attached GPUs")
    assert check("GR-CMP-014", "google_dataproc_cluster", dataproc(worker_config="")) == \
        "cluster_config.worker_config is 'unset', which cannot take attached GPUs"
    assert check("GR-CMP-014", "google_dataproc_cluster", dataproc(worker_config="${var.m}")) is None
    vm = {"machine_type": "a2-highgpu-1g", "guest_accelerator": [{"type": "nvidia-tesla-a100", "count": 1}]}
    assert check("GR-CMP-014", "google_compute_instance", vm) == "machine_type is 'a2-highgpu-1g', which has built-in GPUs"


@pytest.mark.parametrize("version, message", [
    ("2.2.41-debian12", "image_version '2.2.41-debian12' is below 2.2.42, the first with scheduled stop"),
    ("2.2.42", None), ("2.2", None), ("2.3.1-debian12", None), ("3.0.0", None),
    ("1.5-debian10", "image_version '1.5-debian10' predates cluster scheduled stop"),
    ("2", "image_version '2' is not a Dataproc image version"),
    ("preview-debian12", "image_version 'preview-debian12' is not a Dataproc image version"),
    ("${var.image}", None), (None, None),
])
def test_scheduled_stop_image_messages(version, message):
    config = {"lifecycle_config": {"idle_stop_ttl": "1800s"}}
    if version is not None:
        config["software_config"] = {"image_version": version}
    assert check("GR-CMP-016", "google_dataproc_cluster", {"cluster_config": config}) == message
    assert check("GR-CMP-016", "google_dataproc_cluster", {"cluster_config": {**config, "lifecycle_config": {}}}) is None


@pytest.mark.parametrize("start, end, recurrence, message", [
    ("2026-01-01T02:00:00Z", "2026-01-01T06:00:00Z", "FREQ=WEEKLY;BYDAY=SA,SU",
     "windows add up to 8 h a week (2 x 4 h); Composer needs 12 h"),
    ("2026-01-01T02:00:00Z", "2026-01-01T05:30:00Z", "FREQ=DAILY", "each window lasts 3.5 h; Composer needs slots of at least 4 h"),
    ("2026-01-01T02:00:00Z", "2026-01-01T08:00:00Z", "FREQ=WEEKLY;BYDAY=SA,SU", None),
    ("2026-01-01T02:00:00Z", "2026-01-01T08:00:00Z", "FREQ=MONTHLY",
     "recurrence 'FREQ=MONTHLY' is neither FREQ=DAILY nor FREQ=WEEKLY;BYDAY=<days>"),
    ("02:00", "2026-01-01T08:00:00Z", "FREQ=DAILY", "start_time '02:00' / end_time '2026-01-01T08:00:00Z' are not RFC 3339 times"),
])
def test_composer_maintenance_messages(start, end, recurrence, message):
    env = {"config": {"maintenance_window": {"start_time": start, "end_time": end, "recurrence": recurrence}}}
    assert check("GR-CMP-017", "google_composer_environment", env) == message


def test_dataproc_lifecycle_messages():
    lifecycle = lambda **c: {"cluster_config": {"lifecycle_config": c}}  # noqa: E731
    assert check("GR-CMP-007", "google_dataproc_cluster", lifecycle(idle_stop_ttl="600s", auto_delete_ttl="1d", idle_delete_ttl="1h")) == \
        "cluster_config.lifecycle_config.idle_delete_ttl deletes the cluster Terraform manages"
    assert check("GR-CMP-007", "google_dataproc_cluster", lifecycle(idle_stop_ttl="599s")) == \
        "idle_stop_ttl '599s' is outside Dataproc's range [600s, 1209600s]"
    assert check("GR-CMP-007", "google_dataproc_cluster", lifecycle(idle_stop_ttl="30m")) == \
        "idle_stop_ttl '30m' is outside Dataproc's range [600s, 1209600s]"
    assert check("GR-CMP-007", "google_dataproc_cluster", lifecycle()) == \
        "no cluster_config.lifecycle_config.idle_stop_ttl (an idle cluster keeps running)"


def test_dataproc_cap_counts_an_unreadable_count_as_zero():
    cluster = {"cluster_config": {"worker_config": {"num_instances": 51}, "preemptible_worker_config": {"num_instances": "many"}}}
    assert check("GR-CMP-012", "google_dataproc_cluster", cluster) == "up to 51 workers, above the cap of 50"


# ---------------------------------------------------------------- ML: Workbench, Vertex AI schedules

ML_SA = "acme-dev-ml-workbench@acme-data-dev.iam.gserviceaccount.com"
COMPUTE_SA = "123456789012-compute@developer.gserviceaccount.com"


def workbench(**gce) -> dict:
    base = {"machine_type": "e2-standard-4", "disable_public_ip": True, "service_accounts": [{"email": ML_SA}],
            "metadata": {"idle-timeout-seconds": "3600"}}
    return {"gce_setup": {**base, **gce}}


def test_workbench_idle_range_is_stated_in_minutes():
    assert RULES_BY_ID["GR-ML-002"].description == \
        "Workbench instances stop when idle, after 10-1440 minutes (Workbench's accepted range)."


@pytest.mark.parametrize("seconds, ok", [
    ("600", True), ("599", False), ("86400", True), ("86401", False), ("86340", True), ("660", True), ("630", False),
    ("0", False), ("-600", False), ("ten", False), (3600, True),
])
def test_workbench_idle_timeout_at_the_limits(seconds, ok):
    message = check("GR-ML-002", "google_workbench_instance", workbench(metadata={"idle-timeout-seconds": seconds}))
    assert message == (None if ok else f"idle-timeout-seconds {seconds!r} is not whole minutes within 600-86400 s")


def test_workbench_without_idle_timeout_bills_until_stopped():
    assert check("GR-ML-002", "google_workbench_instance", workbench(metadata={})) == \
        "no idle-timeout-seconds metadata: the instance would bill until someone stops it"
    assert check("GR-ML-002", "google_workbench_instance", workbench(metadata={"idle-timeout-seconds": "${var.t}"})) is None


@pytest.mark.parametrize("machine, ok", [
    ("e2-standard-16", True), ("n2-standard-17", False), ("n2-highmem-16", True), ("e2-standard-32", False),
    ("custom-4-16384", False), ("${var.machine}", True),
])
def test_workbench_vcpu_cap_at_the_limit(machine, ok):
    message = check("GR-ML-003", "google_workbench_instance", workbench(machine_type=machine))
    assert message == (None if ok else f"machine_type {machine!r} is not a predefined type of at most 16 vCPUs")


def test_workbench_identity_is_the_first_service_account():
    """Workbench runs as the first (only) account of gce_setup.service_accounts."""
    accounts = lambda *emails: workbench(service_accounts=[{"email": e} for e in emails])  # noqa: E731
    assert check("GR-ML-003", "google_workbench_instance", accounts(ML_SA, COMPUTE_SA)) is None
    assert check("GR-ML-003", "google_workbench_instance", accounts(COMPUTE_SA, ML_SA)) == f"runs as the default compute SA {COMPUTE_SA}"
    assert check("GR-ML-003", "google_workbench_instance", accounts("", ML_SA)) == \
        "no gce_setup.service_accounts: the Compute Engine default SA (Editor) would be used"
    assert check("GR-ML-003", "google_workbench_instance", workbench(service_accounts=[])) == \
        "no gce_setup.service_accounts: the Compute Engine default SA (Editor) would be used"


def test_workbench_problems_are_reported_together():
    message = check("GR-ML-003", "google_workbench_instance", workbench(
        service_accounts=[], machine_type="n2-standard-32", accelerator_configs=[{"type": "NVIDIA_TESLA_T4", "core_count": 1}]))
    assert message == ("no gce_setup.service_accounts: the Compute Engine default SA (Editor) would be used; "
                       "machine_type 'n2-standard-32' is not a predefined type of at most 16 vCPUs; "
                       "accelerator_configs set (GPUs are not budgeted for notebooks)")


@pytest.mark.parametrize("attrs, message", [
    ({"member": "group:ds@example.com"}, None),
    ({"member": "serviceAccount:" + ML_SA}, None),
    ({"member": "user:alice@example.com"}, "members ['user:alice@example.com'] are not groups or service accounts"),
    ({"members": ["group:ds@example.com", "domain:example.com"]}, "members ['domain:example.com'] are not groups or service accounts"),
    ({"members": ["group:ds@example.com", "${var.member}"]}, None),
    ({"policy_data": "{}"}, None),
])
def test_notebook_members_single_member_and_binding_lists(attrs, message):
    assert check("GR-ML-004", "google_workbench_instance_iam_member", attrs) == message


def vertex_schedule(uri: str, body: bytes | None) -> dict:
    target = {"uri": uri, "oauth_token": {"service_account_email": ML_SA}}
    if body is not None:
        target["body"] = base64.b64encode(body).decode()
    return {"http_target": target}


PIPELINE_JOBS_URI = "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/pipelineJobs"


@pytest.mark.parametrize("uri, body, message", [
    (PIPELINE_JOBS_URI, json.dumps({"serviceAccount": ML_SA}).encode(), None),
    (PIPELINE_JOBS_URI, json.dumps({"displayName": "x"}).encode(), "pipelineJobs request without serviceAccount"),
    (PIPELINE_JOBS_URI, json.dumps({"serviceAccount": COMPUTE_SA}).encode(), f"pipeline runs as the default compute SA {COMPUTE_SA}"),
    (PIPELINE_JOBS_URI, b"{not json", "the pipelineJobs request body is not readable JSON"),
    (PIPELINE_JOBS_URI, None, "the pipelineJobs request body is not readable JSON"),
    # other Vertex AI calls, and other APIs ending in /pipelineJobs, are not pipeline runs
    (PIPELINE_JOBS_URI.replace("pipelineJobs", "customJobs"), b"{}", None),
    ("https://example.com/v1/pipelineJobs", b"{}", None),
])
def test_vertex_pipeline_schedules_name_their_identity(uri, body, message):
    assert check("GR-ML-006", "google_cloud_scheduler_job", vertex_schedule(uri, body)) == message


def test_vertex_pipeline_body_not_base64_is_unreadable():
    job = {"http_target": {"uri": PIPELINE_JOBS_URI, "body": "not base64!"}}
    assert check("GR-ML-006", "google_cloud_scheduler_job", job) == "the pipelineJobs request body is not readable JSON"


def test_a_vertex_pipeline_body_built_at_apply_time_is_a_warning_not_a_refusal():
    """A "${...}" body (base64encode(jsonencode(...))) names its account only at apply: unverifiable, reported
    as a warning like every computed value, not refused as unreadable."""
    body = "${base64encode(jsonencode(local.request))}"
    job = {"http_target": {"uri": PIPELINE_JOBS_URI, "body": body}}
    message = RULES_BY_ID["GR-ML-006"].check(Target("google_cloud_scheduler_job", job, path="s/job"))
    assert isinstance(message, Unverified)
    assert message == f"the pipelineJobs request body is computed ({body}): its serviceAccount is unknown until apply"


@pytest.mark.parametrize("bindings, message", [
    ([{"role": "roles/notebooks.runner", "members": ["group:ds@example.com", "serviceAccount:" + ML_SA]}], None),
    ([{"role": "roles/notebooks.runner", "members": ["group:ds@example.com", "user:alice@example.com"]},
      {"role": "roles/notebooks.viewer", "members": ["domain:example.com"]}],
     "members ['user:alice@example.com', 'domain:example.com'] are not groups or service accounts"),
])
def test_notebook_members_of_a_policy_are_read_from_policy_data(bindings, message):
    """An *_iam_policy grants through policy_data, not member/members: a user or domain there is refused too."""
    attrs = {"name": "wb", "policy_data": json.dumps({"bindings": bindings})}
    assert check("GR-ML-004", "google_workbench_instance_iam_policy", attrs) == message


@pytest.mark.parametrize("decoded", [b"[1, 2]", b'"launch"', b"42", b"null"])
def test_scheduler_bodies_that_are_json_but_not_an_object_are_refused_not_crashed(decoded):
    """A base64 body decoding to a JSON list (or string, number, null) is no request: GR-ML-006 calls it
    unreadable and the Dataflow caps find nothing set, instead of synth dying with AttributeError."""
    body = base64.b64encode(decoded).decode()
    assert check("GR-ML-006", "google_cloud_scheduler_job", {"http_target": {"uri": PIPELINE_JOBS_URI, "body": body}}) == \
        "the pipelineJobs request body is not readable JSON"
    launch = {"http_target": {"uri": "https://dataflow.googleapis.com/v1b3/projects/p/locations/r/flexTemplates:launch", "body": body}}
    assert check("GR-CMP-010", "google_cloud_scheduler_job", launch) == "launch request maxWorkers is not set (unbounded)"
    assert check("GR-CMP-011", "google_cloud_scheduler_job", launch) == "launch request ipConfiguration is None, not WORKER_IP_PRIVATE"


@pytest.mark.parametrize("written", ["not json", json.dumps([{"environment": {"maxWorkers": 51}}]), json.dumps("orders")])
def test_pipelines_json_that_is_not_an_object_is_refused_not_crashed(written):
    """PIPELINES_JSON is {pipeline: config}; anything else is refused by GR-PRC-002 (the caps find no launch in it)."""
    function = {"service_config": {"max_instance_count": 2, "environment_variables": {"MAX_ACTIVE_JOBS": "15", "PIPELINES_JSON": written}}}
    assert check("GR-PRC-002", "google_cloudfunctions2_function", function) == "PIPELINES_JSON is not a JSON object (pipeline: config)"
    assert check("GR-CMP-010", "google_cloudfunctions2_function", function) is None
