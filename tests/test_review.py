"""`make review`: resource- and attribute-level diffs, data destruction called out first, exact exit codes."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dataplatform import tfjson
from dataplatform.tools import review
from tests.support import environment_names

ENV = environment_names()[0]
STACK = f"{ENV}-platform"


@pytest.fixture(scope="module")
def base(stacks):
    return stacks[STACK]


def _edit(stack: dict, path: str, fn) -> dict:
    stack = copy.deepcopy(stack)
    found = False
    for items in stack["resource"].values():
        for key, body in list(items.items()):
            if body["//"]["metadata"]["path"].split("/", 1)[1] == path:
                found = True
                if fn(body) == "delete":
                    del items[key]
    assert found, path
    return stack


def _address(stack: dict, path: str) -> str:
    return next(r.address for r in tfjson.resources(stack) if r.relative_path == path)


def test_identical_stacks_have_no_diff(base):
    assert review.diff_stack(STACK, base, base).empty


def test_attribute_change_is_reported_with_before_and_after(base, environments):
    cidr = environments[ENV].network.subnet_cidr
    head = _edit(base, "network/subnet", lambda b: b.update(ip_cidr_range="10.99.0.0/20"))
    diff = review.diff_stack(STACK, base, head)
    assert diff.changed == {"network/subnet": ("google_compute_subnetwork", [("ip_cidr_range", cidr, "10.99.0.0/20")])}
    assert not diff.data_destruction
    assert f"| `network/subnet` | `ip_cidr_range` | `{cidr}` | `10.99.0.0/20` |" in review.render([diff], base="main").splitlines()


def test_bucket_rename_is_flagged_as_data_replacement(base, environments):
    """The folders in the bucket go with it: their `bucket` reference resolves to the new name."""
    head = _edit(base, "landing/bucket", lambda b: b.update(name=b["name"] + "2"))
    diff = review.diff_stack(STACK, base, head)
    folders = [r.relative_path for r in tfjson.resources(base) if r.type == "google_storage_managed_folder"
               and r.relative_path.startswith("landing/")]
    assert {f"landing/folder-{p.name}" for p in environments[ENV].pipelines} <= set(folders)
    assert diff.data_destruction == ["`landing/bucket` (google_storage_bucket) is replaced: name changed"] + [
        f"`{f}` (google_storage_managed_folder) is replaced: bucket changed" for f in sorted(folders)]
    name = base_name = next(r.body["name"] for r in tfjson.resources(base) if r.relative_path == "landing/bucket")
    assert diff.changed[folders[0]][1] == [("bucket", base_name, name + "2")]
    report = review.render([diff], base="main")
    assert report.index("Data resources destroyed or replaced") < report.index("| stack |")


def test_nested_attribute_replacement_is_flagged(stacks):
    """Changing a secret's replication block (nested attributes) replaces the secret (the hand-filled secrets live in bootstrap)."""
    stack = f"{ENV}-bootstrap"
    head = _edit(stacks[stack], "mail-api-key/secret", lambda b: b.update(replication={"auto": {}}))
    diff = review.diff_stack(stack, stacks[stack], head)
    assert diff.data_destruction == ["`mail-api-key/secret` (google_secret_manager_secret) is replaced: "
                                     "replication.auto, replication.user_managed.replicas[0].location changed"]


def test_removed_table_and_weakened_protection_are_flagged(base, environments):
    table = f"warehouse/table-{environments[ENV].pipelines[0].name}"
    head = _edit(base, table, lambda b: "delete")
    head = _edit(head, "curated/bucket", lambda b: b["lifecycle"].update(prevent_destroy=False))
    diff = review.diff_stack(STACK, base, head)
    assert diff.removed == {table: "google_bigquery_table"}
    assert diff.data_destruction == [f"`{table}` (google_bigquery_table) is removed"]
    assert diff.weakened == ["`curated/bucket`: lifecycle.prevent_destroy True -> False"]


def test_added_resources_are_listed(base):
    diff = review.diff_stack(STACK, None, base)
    assert "landing/bucket" in diff.added and not diff.data_destruction and not diff.changed


def test_a_reference_resolving_to_the_same_literal_is_no_change(base):
    """`acme-dev-temp` -> `${google_storage_bucket.temp_bucket_X.name}` names the same bucket."""
    temp = _address(base, "temp/bucket")
    reference = "${" + temp + ".name}"
    literal = next(r.body["name"] for r in tfjson.resources(base) if r.relative_path == "temp/bucket")
    user = next(r for r in tfjson.resources(base) if reference in r.body.values())
    attribute = next(k for k, v in user.body.items() if v == reference)
    as_literal = _edit(base, user.relative_path, lambda b: b.update({attribute: literal}))
    assert review.diff_stack(STACK, as_literal, base).empty
    renamed = _edit(base, "temp/bucket", lambda b: b.update(name=literal + "-x"))
    diff = review.diff_stack(STACK, as_literal, renamed)
    assert diff.changed[user.relative_path][1] == [(attribute, literal, reference)]


def test_json_documents_are_diffed_by_key(base):
    def new_schedule(body):
        doc = json.loads(body["content"])
        doc[next(iter(doc))]["schedule"] = "7 7 * * *"
        body["content"] = json.dumps(doc, indent=2)

    head = _edit(base, "dags/pipelines-json", new_schedule)
    (change,) = review.diff_stack(STACK, base, head).changed["dags/pipelines-json"][1]
    doc = json.loads(next(r.body for r in tfjson.resources(base) if r.relative_path == "dags/pipelines-json")["content"])
    first = next(iter(doc))
    attr, old, new = change
    assert (attr, old, new) == (f"content → {first}.schedule", doc[first]["schedule"], "7 7 * * *")
    row = next(line for line in review.render([review.diff_stack(STACK, base, head)], base="main").splitlines() if "7 7 * * *" in line)
    assert row == f"| `dags/pipelines-json` | `{attr}` | `{old}` | `{new}` |"


def test_long_values_are_folded_in_details(base):
    text = "x" * 120 + " | `tick`"
    head = _edit(base, "landing/bucket", lambda b: b.update(labels={**b["labels"], "note": text}))
    report = review.render([review.diff_stack(STACK, base, head)], base="main")
    row = next(line for line in report.splitlines() if "labels.note" in line)
    assert row.count("|") == 5, "the value must not break the table"
    assert "(full value below)" in row and "x" * 61 not in row
    assert "<details><summary><code>landing/bucket</code> <code>labels.note</code>: full value</summary>" in report
    assert f"+{text}" in report


def _plan(tmp_path: Path, stack: str, changes: list[dict], prior: bool) -> Path:
    out = tmp_path / "out"
    plan = out / "plans" / stack / "plan.json"
    plan.parent.mkdir(parents=True)
    (plan.parent / "cdk.tf.json").write_text("{}")
    (out / "stacks" / stack).mkdir(parents=True)
    (out / "stacks" / stack / "cdk.tf.json").write_text("{}")
    root = {"resources": [{"address": "x"}]} if prior else {}
    plan.write_text(json.dumps({"prior_state": {"values": {"root_module": root}}, "resource_changes": changes}))
    return out


def test_an_offline_plan_on_empty_state_shows_no_counts(tmp_path):
    out = _plan(tmp_path, STACK, [{"address": "a.b", "change": {"actions": ["create"]}}] * 3, prior=False)
    plan = review.plan_summary(out, STACK)
    assert plan.empty_state and plan.counts == {"create": 3}
    report = review.render([review.StackDiff(STACK)], base="main", plans={STACK: plan})
    assert "create: 3" not in report and "It ran against empty state" not in report  # no change: no section at all
    diff = review.StackDiff(STACK, added={"x/y": "google_pubsub_topic"})
    report = review.render([diff], base="main", plans={STACK: plan})
    assert "Offline plan (`make validate`): Terraform accepts this stack. It ran against empty state" in report
    assert "create: 3" not in report


def test_a_real_plan_names_what_it_replaces_and_why(tmp_path, base):
    bucket = _address(base, "landing/bucket")
    changes = [
        {"address": "google_pubsub_topic.t", "change": {"actions": ["update"]}},
        {"address": bucket, "change": {"actions": ["delete", "create"]}, "replace_paths": [["location"], ["custom_placement_config", 0]],
         "action_reason": "replace_because_cannot_update"},
    ]
    out = _plan(tmp_path, STACK, changes, prior=True)
    plan = review.plan_summary(out, STACK)
    assert not plan.empty_state and plan.counts == {"replace": 1, "update": 1}
    # the plan wins over the attribute list: a label change alone would never replace a bucket
    head = _edit(base, "landing/bucket", lambda b: b.update(labels={**b["labels"], "x": "y"}))
    diff = review.diff_stack(STACK, base, head, plan)
    assert diff.data_destruction == ["`landing/bucket` (google_storage_bucket) is replaced (Terraform plan: location, "
                                     "custom_placement_config[0]; replace_because_cannot_update)"]
    report = review.render([diff], base="main", plans={STACK: plan})
    assert "Terraform plan: replace: 1, update: 1" in report
    assert f"- **replace** `{bucket}` (because of location, custom_placement_config[0]; replace_because_cannot_update)" in report
    # and a plan that keeps the bucket overrides the attribute list the other way round
    renamed = _edit(base, "landing/bucket", lambda b: b.update(name=b["name"] + "2"))
    keep = review.Plan(False, {"update": 1}, {bucket: (["update"], [], None)})
    assert review.diff_stack(STACK, base, renamed, keep).data_destruction == []


def test_a_plan_of_other_code_is_ignored(tmp_path):
    out = _plan(tmp_path, STACK, [], prior=True)
    assert review.plan_summary(out, STACK) is not None
    (out / "stacks" / STACK / "cdk.tf.json").write_text('{"changed": true}')
    assert review.plan_summary(out, STACK) is None
    assert review.plan_summary(out, "other-platform") is None


# ---------------------------------------------------------------- the command, exact exit codes

@pytest.fixture
def head_out(synth_dir, tmp_path):
    head = tmp_path / "head"
    shutil.copytree(synth_dir, head, ignore=shutil.ignore_patterns("plans", "guardrails"))
    return head


def _base_is(synth_dir):
    return lambda ref, out: shutil.copytree(synth_dir, Path(out), ignore=shutil.ignore_patterns("plans", "guardrails"))


def test_exit_3_only_when_gated_on_data_destruction(synth_dir, head_out, monkeypatch, capsys):
    path = head_out / "stacks" / STACK / "cdk.tf.json"
    path.write_text(json.dumps(_edit(json.loads(path.read_text()), "warehouse/dataset", lambda b: b.update(location="US"))))
    monkeypatch.setattr(review, "synth_ref", _base_is(synth_dir))
    assert review.main(["--base", "main", "--head-out", str(head_out)]) == 0
    assert review.main(["--base", "main", "--head-out", str(head_out), "--fail-on-data-destruction"]) == 3
    captured = capsys.readouterr()
    assert "`warehouse/dataset` (google_bigquery_dataset) is replaced: location changed" in captured.out
    assert captured.err == "review: data resources would be destroyed or replaced (see the top of the report)\n"


def test_no_destruction_exits_0_even_when_gated(synth_dir, head_out, monkeypatch):
    monkeypatch.setattr(review, "synth_ref", _base_is(synth_dir))
    assert review.main(["--base", "main", "--head-out", str(head_out), "--fail-on-data-destruction"]) == 0


def test_a_bad_base_ref_is_one_line_and_exit_1(head_out, capsys):
    assert review.main(["--base", "origin/no-such-branch", "--head-out", str(head_out)]) == 1
    captured = capsys.readouterr()
    assert captured.err == ("review: BASE 'origin/no-such-branch' is not a commit in this repository "
                            "(fetch it first: git fetch origin no-such-branch)\n")
    assert captured.out == ""


def test_a_failing_base_synth_is_one_line_and_exit_1(head_out, monkeypatch, capsys):
    def failing(tree, outdir, what):
        raise review.ReviewError(f"the synth of {what} failed: environments/dev.yaml:3: region: required, but not set")

    monkeypatch.setattr(review, "_synth", failing)
    assert review.main(["--base", "HEAD", "--head-out", str(head_out)]) == 1
    assert capsys.readouterr().err == ("review: the synth of BASE 'HEAD' failed: environments/dev.yaml:3: region: required, "
                                       "but not set\n")


def test_leftover_stack_directories_are_not_reviewed(synth_dir, head_out, monkeypatch, capsys):
    """A stack directory the manifest does not list (a deleted environment's) is no phantom addition."""
    shutil.copytree(head_out / "stacks" / STACK, head_out / "stacks" / "gone-platform")
    monkeypatch.setattr(review, "synth_ref", _base_is(synth_dir))
    assert review.main(["--base", "main", "--head-out", str(head_out)]) == 0
    out = capsys.readouterr().out
    assert "gone-platform" not in out and "No infrastructure change in any environment." in out


def test_review_of_head_against_the_working_tree_runs_offline(synth_dir, tmp_path):
    """The real path: git worktree + synth of HEAD (the tree's own changes may show; the command must work)."""
    assert subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True).returncode == 0
    assert review.main(["--base", "HEAD", "--head-out", str(synth_dir), "--output", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text().startswith("## Infrastructure review against `HEAD`")


def test_new_checkov_findings_are_reported(synth_dir, head_out, monkeypatch, capsys):
    """A change that opens a bucket to public access shows up as a new checkov finding."""
    path = head_out / "stacks" / STACK / "cdk.tf.json"
    path.write_text(json.dumps(_edit(json.loads(path.read_text()), "landing/bucket",
                                     lambda b: b.update(uniform_bucket_level_access=False))))
    monkeypatch.setattr(review, "synth_ref", _base_is(synth_dir))
    assert review.main(["--base", "main", "--head-out", str(head_out), "--scan"]) == 0
    out = capsys.readouterr().out
    assert "### New policy findings" in out and f"checkov: CKV_GCP_29 `{STACK}/landing/bucket`" in out
