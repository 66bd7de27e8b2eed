"""`make review`: resource- and attribute-level diffs, data destruction called out first."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from dataplatform.tools import review


@pytest.fixture(scope="module")
def base(stacks):
    return stacks["dev-platform"]


def _edit(stack: dict, path: str, fn) -> dict:
    stack = copy.deepcopy(stack)
    for items in stack["resource"].values():
        for key, body in list(items.items()):
            if body["//"]["metadata"]["path"].split("/", 1)[1] == path:
                if fn(body) == "delete":
                    del items[key]
    return stack


def test_identical_stacks_have_no_diff(base):
    assert review.diff_stack("dev-platform", base, base).empty


def test_attribute_change_is_reported_with_before_and_after(base):
    head = _edit(base, "network/subnet", lambda b: b.update(ip_cidr_range="10.99.0.0/20"))
    diff = review.diff_stack("dev-platform", base, head)
    assert diff.changed == {"network/subnet": ("google_compute_subnetwork", [("ip_cidr_range", "10.10.0.0/20", "10.99.0.0/20")])}
    assert not diff.data_destruction
    report = review.render([diff], base="main")
    assert "| `network/subnet` | `ip_cidr_range` | `10.10.0.0/20` | `10.99.0.0/20` |" in report


def test_bucket_rename_is_flagged_as_data_replacement(base):
    head = _edit(base, "landing/bucket", lambda b: b.update(name="acme-dev-landing2"))
    diff = review.diff_stack("dev-platform", base, head)
    assert diff.data_destruction == ["`landing/bucket` (google_storage_bucket) is replaced: name changed"]
    report = review.render([diff], base="main")
    assert report.index("Data resources destroyed or replaced") < report.index("| stack |")


def test_removed_table_and_weakened_protection_are_flagged(base):
    head = _edit(base, "warehouse/table-orders", lambda b: "delete")
    head = _edit(head, "curated/bucket", lambda b: b["lifecycle"].update(prevent_destroy=False))
    diff = review.diff_stack("dev-platform", base, head)
    assert diff.removed == {"warehouse/table-orders": "google_bigquery_table"}
    assert any("warehouse/table-orders" in d for d in diff.data_destruction)
    assert diff.weakened == ["`curated/bucket`: lifecycle.prevent_destroy True -> False"]


def test_added_resources_are_listed(base):
    diff = review.diff_stack("dev-platform", None, base)
    assert "landing/bucket" in diff.added and not diff.data_destruction


def test_plan_actions_are_counted(tmp_path):
    plan = tmp_path / "plans" / "dev-platform" / "plan.json"
    plan.parent.mkdir(parents=True)
    (plan.parent / "cdk.tf.json").write_text("{}")
    (tmp_path / "stacks" / "dev-platform").mkdir(parents=True)
    (tmp_path / "stacks" / "dev-platform" / "cdk.tf.json").write_text("{}")
    plan.write_text(json.dumps({"resource_changes": [
        {"change": {"actions": ["create"]}}, {"change": {"actions": ["create"]}},
        {"address": "google_bigquery_table.t", "change": {"actions": ["delete", "create"]}}, {"change": {"actions": ["update"]}}]}))
    assert review.plan_actions(tmp_path, "dev-platform") == {"create": 2, "replace": 1, "update": 1,
                                                             "replace: google_bigquery_table.t": 1}
    report = review.render([review.StackDiff("dev-platform")], base="main",
                           plans={"dev-platform": review.plan_actions(tmp_path, "dev-platform")})
    assert "create: 2, replace: 1, update: 1" in report and "- **replace** `google_bigquery_table.t`" in report
    assert review.plan_actions(tmp_path, "prod-platform") is None
    (tmp_path / "stacks" / "dev-platform" / "cdk.tf.json").write_text('{"changed": true}')
    assert review.plan_actions(tmp_path, "dev-platform") is None, "a plan of other code is not shown"


def test_main_fails_on_data_destruction(synth_dir, tmp_path, monkeypatch, capsys):
    head = tmp_path / "head"
    shutil.copytree(synth_dir / "stacks", head / "stacks")
    path = head / "stacks" / "dev-platform" / "cdk.tf.json"
    path.write_text(json.dumps(_edit(json.loads(path.read_text()), "warehouse/dataset", lambda b: b.update(location="US"))))
    monkeypatch.setattr(review, "synth_ref", lambda ref, out: shutil.copytree(synth_dir / "stacks", Path(out) / "stacks"))
    assert review.main(["--base", "main", "--head-out", str(head)]) == 0
    assert review.main(["--base", "main", "--head-out", str(head), "--fail-on-data-destruction"]) == 3
    assert "`warehouse/dataset` (google_bigquery_dataset) is replaced: location changed" in capsys.readouterr().out


def test_review_of_head_against_the_working_tree_runs_offline(synth_dir, tmp_path):
    """The real path: git worktree + synth of HEAD; the tree's own changes may show, but it must work."""
    assert review.main(["--base", "HEAD", "--head-out", str(synth_dir), "--output", str(tmp_path / "r.md")]) in (0, 3)
    assert (tmp_path / "r.md").read_text().startswith("## Infrastructure review against `HEAD`")


def test_new_checkov_findings_are_reported(synth_dir, tmp_path, monkeypatch, capsys):
    """A change that opens a bucket to public access shows up as a new checkov finding."""
    head = tmp_path / "head"
    shutil.copytree(synth_dir / "stacks", head / "stacks")
    path = head / "stacks" / "dev-platform" / "cdk.tf.json"
    path.write_text(json.dumps(_edit(json.loads(path.read_text()), "landing/bucket",
                                     lambda b: b.update(uniform_bucket_level_access=False))))
    monkeypatch.setattr(review, "synth_ref", lambda ref, out: shutil.copytree(synth_dir / "stacks", Path(out) / "stacks"))
    assert review.main(["--base", "main", "--head-out", str(head), "--scan"]) == 0
    out = capsys.readouterr().out
    assert "### New policy findings" in out and "checkov: CKV_GCP_29 `dev-platform/landing/bucket`" in out
