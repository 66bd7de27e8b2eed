"""checkov over every synthesized stack: zero failed checks, every skip justified, and our
custom policies demonstrably load and fail what they should (a scan that checks nothing passes too)."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import pytest
import yaml

from dataplatform.tools import checkov_scan as runner

REPO = Path(__file__).resolve().parent.parent


def test_checkov_passes_on_every_environment(synth_dir, stacks):
    started = time.perf_counter()
    result = runner.scan(synth_dir / "stacks", synth_dir / "scan")
    elapsed = time.perf_counter() - started
    print(runner.summary(result), f"\n(scan incl. mapping: {elapsed:.1f}s)")
    assert result.stacks == sorted(stacks)
    assert result.ok, runner.summary(result)
    for report in ("results_json.json", "results_sarif.sarif", "results_junitxml.xml", "results_cli.txt"):
        assert (synth_dir / "scan" / report).exists(), report


def test_every_skip_has_a_reason():
    config = yaml.safe_load((REPO / ".checkov.yaml").read_text())
    reasons = runner.skip_reasons(REPO / ".checkov.yaml")
    assert config["framework"] == ["terraform_json"] and config["skip-download"] is True
    assert set(config["skip-check"]) == set(reasons)
    assert all(len(reason) > 40 for reason in reasons.values()), reasons


def test_a_scan_of_nothing_is_not_a_pass(tmp_path):
    result = runner.scan(tmp_path, tmp_path / "scan")
    assert not result.ok and "make synth" in result.problems[0]


def _resource(rtype: str, name: str, body: dict) -> tuple[str, str, dict]:
    return rtype, name, {**body, "//": {"metadata": {"path": f"fixture/{name}", "uniqueId": name}}}


LABELS = {"owner": "o", "cost_center": "c", "env": "dev", "managed_by": "cdktn"}
LIFECYCLE = [{"action": {"type": "Delete"}, "condition": {"age": 7}}]
GITHUB = {"issuer_uri": "https://token.actions.githubusercontent.com"}
# (policy, failing resource, passing resource)
POLICY_CASES = [
    ("CKV_DP_1", _resource("google_composer_environment", "composer_public", {"name": "c", "labels": LABELS, "config": {"environment_size": "ENVIRONMENT_SIZE_SMALL"}}),
     _resource("google_composer_environment", "composer_private", {"name": "c", "labels": LABELS, "config": {"enable_private_environment": True}})),
    ("CKV_DP_2", _resource("google_storage_bucket", "bucket_unlabelled", {"name": "b1", "lifecycle_rule": LIFECYCLE, "labels": {"owner": "o"}}),
     _resource("google_storage_bucket", "bucket_labelled", {"name": "b2", "lifecycle_rule": LIFECYCLE, "labels": LABELS})),
    ("CKV_DP_3", _resource("google_project_iam_member", "editor", {"project": "p", "role": "roles/editor", "member": "user:a@b.c"}),
     _resource("google_project_iam_member", "job_user", {"project": "p", "role": "roles/bigquery.jobUser", "member": "user:a@b.c"})),
    ("CKV_DP_4", _resource("google_storage_bucket", "bucket_no_lifecycle", {"name": "b3", "labels": LABELS, "versioning": {"enabled": True}}),
     _resource("google_storage_bucket", "bucket_labelled", {})),
    ("CKV_DP_5", _resource("google_dataproc_cluster", "dataproc_bad", {"name": "d", "labels": LABELS, "cluster_config": {"gce_cluster_config": {"internal_ip_only": False}}}),
     _resource("google_dataproc_cluster", "dataproc_good", {"name": "d", "labels": LABELS, "cluster_config": {
         "gce_cluster_config": {"internal_ip_only": True}, "lifecycle_config": {"idle_stop_ttl": "1800s"}}})),
    ("CKV_DP_6", _resource("google_dataproc_cluster", "dataproc_deleting", {"name": "d", "labels": LABELS, "cluster_config": {
         "gce_cluster_config": {"internal_ip_only": True}, "lifecycle_config": {"idle_delete_ttl": "1800s"}}}),
     _resource("google_dataproc_cluster", "dataproc_good", {})),
    ("CKV_DP_7", _resource("google_project_iam_member", "act_as", {"project": "p", "role": "roles/iam.serviceAccountUser", "member": "user:a@b.c"}),
     _resource("google_project_iam_member", "job_user", {})),
    ("CKV_DP_8", _resource("google_iam_workload_identity_pool_provider", "wif_by_name", {"oidc": GITHUB, "attribute_condition": "assertion.repository == 'acme/repo'"}),
     _resource("google_iam_workload_identity_pool_provider", "wif_pinned", {"oidc": GITHUB, "attribute_condition":
         "assertion.repository_id == '812345678' && assertion.repository_owner_id == '98765432'"})),
    ("CKV_DP_10", _resource("google_project_iam_member", "dataflow_dev_to_uploader", {"project": "p", "role": "roles/dataflow.developer",
                                                                                     "member": "serviceAccount:acme-dev-uploader@p.iam.gserviceaccount.com"}),
     _resource("google_project_iam_member", "dataflow_dev_to_launcher", {"project": "p", "role": "roles/dataflow.developer",
                                                                          "member": "serviceAccount:acme-dev-launcher@p.iam.gserviceaccount.com"})),
    ("CKV_DP_11", _resource("google_project_iam_member", "iam_admin_open", {"project": "p", "role": "roles/resourcemanager.projectIamAdmin",
                                                                            "member": "serviceAccount:d@p.iam.gserviceaccount.com"}),
     _resource("google_project_iam_member", "iam_admin_limited", {"project": "p", "role": "roles/resourcemanager.projectIamAdmin",
                                                                   "member": "serviceAccount:d@p.iam.gserviceaccount.com", "condition": {
                                                                       "title": "t", "expression": "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(['roles/bigquery.jobUser'])"}})),
    ("CKV_DP_9", _resource("google_storage_bucket", "bucket_unversioned", {"name": "b4", "labels": LABELS, "lifecycle_rule": [
        {"action": {"type": "SetStorageClass", "storage_class": "NEARLINE"}, "condition": {"age": 90}}]}),
     _resource("google_storage_bucket", "bucket_no_lifecycle", {})),
]


@pytest.fixture(scope="module")
def policy_scan(tmp_path_factory):
    """One checkov run over a fixture stack holding a failing and a passing resource per custom policy."""
    root = tmp_path_factory.mktemp("policies")
    resources: dict[str, dict] = {}
    for _, *cases in POLICY_CASES:
        for rtype, name, body in cases:
            if len(body) > 1:  # cases that only name a resource defined by another case carry just "//"
                resources.setdefault(rtype, {})[name] = body
    (root / "stacks" / "fixture").mkdir(parents=True)
    (root / "stacks" / "fixture" / "cdk.tf.json").write_text(json.dumps({"resource": resources}, indent=2))
    return runner.scan(root / "stacks", root / "scan")


@pytest.mark.parametrize("policy, bad, good", POLICY_CASES, ids=[c[0] for c in POLICY_CASES])
def test_custom_policy_fails_its_bad_case_and_passes_its_good_case(policy_scan, policy, bad, good):
    failed = {(f.check_id, f.path) for f in policy_scan.failed}
    assert (policy, f"fixture/{bad[1]}") in failed, runner.summary(policy_scan)
    assert (policy, f"fixture/{good[1]}") not in failed
    assert policy_scan.by_check.get(policy, 0) >= 2  # evaluated on both


def test_labelable_types_agree_with_the_label_aspect(stacks):
    """policies/dp_labelable_types.py (generated) says what dataplatform.labels.label_attribute says."""
    from cdktn import TerraformResource

    from dataplatform.labels import LABEL_ATTRIBUTE

    from policies.dp_labelable_types import LABELABLE as labelable
    for rtype in sorted({t for stack in stacks.values() for t in stack.get("resource", {})}):
        module = importlib.import_module(f"cdktn_provider_google.{rtype.removeprefix('google_')}")
        (cls,) = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, TerraformResource) and c is not TerraformResource]
        expected = LABEL_ATTRIBUTE[rtype] if rtype in LABEL_ATTRIBUTE else ("labels" if hasattr(cls, "reset_labels") else None)
        assert labelable.get(rtype) == expected, f"{rtype}: run `make labelable-types` (dataplatform/tools/gen_labelable_types.py)"


def test_findings_make_the_scan_fail_and_name_construct_paths(policy_scan):
    assert not policy_scan.ok
    assert "FAILED CKV_DP_3 fixture/editor (google_project_iam_member.editor)" in runner.summary(policy_scan)
