"""`make review` on hand-made stacks (no synth): replacement and destruction rules, weakened
protections, references and JSON documents, plans, the Markdown and the exit codes, exactly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dataplatform.tools import review
from tests.support import fake_synth_out


def res(path: str, rtype: str, logical_id: str | None = None, **body) -> tuple[str, str, dict]:
    return rtype, logical_id or path.replace("/", "_"), {"//": {"metadata": {"path": f"s/{path}"}}, **body}


def stack(*resources: tuple[str, str, dict]) -> dict:
    out: dict = {"resource": {}}
    for rtype, logical_id, body in resources:
        out["resource"].setdefault(rtype, {})[logical_id] = body
    return out


SECRET = "google_secret_manager_secret"
BUCKET = "google_storage_bucket"


# ---------------------------------------------------------------- what replaces a data resource

@pytest.mark.parametrize("rtype, attr, replaces", [
    (SECRET, "replication", True),
    (SECRET, "replication.auto", True),
    (SECRET, "replication.user_managed.replicas[0].location", True),
    (SECRET, "replication_policy", False),  # shares a prefix, is another attribute
    (SECRET, "labels.env", False),
    (BUCKET, "name", True),
    (BUCKET, "name → x", True),
    (BUCKET, "location[0]", True),
    (BUCKET, "labels.name", False),
    ("google_bigquery_table", "time_partitioning.type", True),
    ("google_bigquery_table", "time_partitioning.field", False),
    ("google_compute_network", "name", False),  # not a data type
])
def test_replacing_attributes(rtype, attr, replaces):
    assert review._replaces(rtype, attr) is replaces


def test_a_nested_attribute_of_a_replacing_block_replaces_the_resource():
    before = stack(res("secret", SECRET, secret_id="k", replication={"user_managed": {"replicas": [{"location": "europe-west1"}]}}))
    after = stack(res("secret", SECRET, secret_id="k", replication={"user_managed": {"replicas": [{"location": "europe-west4"}]}}))
    diff = review.diff_stack("s", before, after)
    assert diff.data_destruction == [f"`secret` ({SECRET}) is replaced: replication.user_managed.replicas[0].location changed"]
    assert diff.changed == {"secret": (SECRET, [("replication.user_managed.replicas[0].location", "europe-west1", "europe-west4")])}


def test_a_label_change_replaces_nothing_and_a_removed_data_resource_is_destruction():
    before = stack(res("landing", BUCKET, name="b", labels={"env": "dev"}), res("net", "google_compute_network", name="n"),
                   res("gone", BUCKET, name="g"))
    after = stack(res("landing", BUCKET, name="b", labels={"env": "prod"}), res("new", "google_compute_network", name="m"))
    diff = review.diff_stack("s", before, after)
    assert diff.added == {"new": "google_compute_network"}
    assert diff.removed == {"gone": BUCKET, "net": "google_compute_network"}
    assert diff.changed == {"landing": (BUCKET, [("labels.env", "dev", "prod")])}
    assert diff.data_destruction == [f"`gone` ({BUCKET}) is removed"]
    assert not diff.empty
    assert review.diff_stack("s", before, before).empty
    assert review.diff_stack("s", None, None).empty


@pytest.mark.parametrize("attr, old, new, weakened", [
    ("deletion_protection", True, False, True),
    ("force_destroy", False, True, True),
    ("force_destroy", None, True, True),
    ("delete_contents_on_destroy", False, True, True),
    ("deletion_protection", False, True, False),  # strengthened
    ("force_destroy", True, False, False),
])
def test_weakened_protections(attr, old, new, weakened):
    body = lambda v: {"table_id": "t"} if v is None else {"table_id": "t", attr: v}  # noqa: E731
    diff = review.diff_stack("s", stack(res("t", "google_bigquery_table", **body(old))), stack(res("t", "google_bigquery_table", **body(new))))
    assert diff.weakened == ([f"`t`: {attr} {old!r} -> {new!r}"] if weakened else [])


def test_prevent_destroy_dropped_is_weakened():
    before = stack(res("b", BUCKET, name="b", lifecycle={"prevent_destroy": True}))
    after = stack(res("b", BUCKET, name="b", lifecycle={"prevent_destroy": False}))
    assert review.diff_stack("s", before, after).weakened == ["`b`: lifecycle.prevent_destroy True -> False"]


# ---------------------------------------------------------------- values: references and JSON

def test_a_reference_to_the_same_literal_is_no_change_and_a_changed_target_shows_its_values():
    temp = res("temp", BUCKET, "temp_X", name="acme-dev-temp")
    before = stack(temp, res("job", "google_dataflow_job", temp_gcs_location="gs://acme-dev-temp/tmp"))
    after = stack(temp, res("job", "google_dataflow_job", temp_gcs_location="gs://${google_storage_bucket.temp_X.name}/tmp"))
    assert review.diff_stack("s", before, after).changed == {}
    renamed = stack(res("temp", BUCKET, "temp_X", name="acme-dev-tmp"),
                    res("job", "google_dataflow_job", temp_gcs_location="gs://${google_storage_bucket.temp_X.name}/tmp"))
    changed = review.diff_stack("s", after, renamed).changed
    assert changed["job"] == ("google_dataflow_job", [("temp_gcs_location", "gs://acme-dev-temp/tmp", "gs://acme-dev-tmp/tmp")])


@pytest.mark.parametrize("literal, resolved", [("n", "n"), (3, "3"), (1.5, "1.5"), (True, None), (None, None), ({"a": 1}, None)])
def test_the_resolver_replaces_only_scalar_literals(literal, resolved):
    resolver = review.Resolver(stack(res("b", BUCKET, "b_X", name=literal)))
    ref = "${google_storage_bucket.b_X.name}"
    assert resolver(f"x-{ref}") == f"x-{resolved if resolved is not None else ref}"
    assert resolver([ref, {"k": ref}, 7]) == [resolved or ref, {"k": resolved or ref}, 7]
    assert review.Resolver(None)(ref) == ref


def test_json_documents_are_compared_key_by_key():
    before = {"env": json.dumps({"orders": {"maxWorkers": 2, "ip": "PRIVATE"}, "gone": 1})}
    after = {"env": json.dumps({"orders": {"maxWorkers": 3, "ip": "PRIVATE"}, "new": [1, 2]})}
    assert review.attribute_changes(before, after) == [
        ("env → gone", 1, None), ("env → new", None, [1, 2]), ("env → orders.maxWorkers", 2, 3)]
    assert review.attribute_changes({}, {"env": "[1]"}) == [("env", None, [1])]
    assert review.attribute_changes({"env": "{\"a\": 1}"}, {}) == [("env → a", 1, None)]
    assert review.attribute_changes({"env": "{not json"}, {"env": "{not json!"}) == [("env", "{not json", "{not json!")]
    assert review.attribute_changes({"env": "1"}, {"env": "2"}) == [("env", "1", "2")]  # a number in a string is no document


@pytest.mark.parametrize("value, doc", [("{\"a\": 1}", {"a": 1}), ("  [1]", [1]), ("\"x\"", None), ("{", None), (3, None), ("7", None)])
def test_json_document(value, doc):
    assert review._json_document(value) == doc


def test_flatten():
    assert review.flatten({"a": {"b": 1, "c": [{"d": 2}, {"e": 3}]}, "f": [1, 2], "g": {}, "h": []}) == {
        "a.b": 1, "a.c[0].d": 2, "a.c[1].e": 3, "f": [1, 2], "g": {}, "h": []}
    assert review.flatten([{"x": 1}, 2]) == {"": [{"x": 1}, 2]}


@pytest.mark.parametrize("steps, rendered", [(["replication"], "replication"), (["a", 0, "b"], "a[0].b"), ([0, "a"], "[0].a"), ([], "")])
def test_render_path(steps, rendered):
    assert review._render_path(steps) == rendered


# ---------------------------------------------------------------- plans

def _plan_files(outdir: Path, name: str, plan: dict, *, same_code: bool = True) -> None:
    for where in ("plans", "stacks"):
        Path(outdir, where, name).mkdir(parents=True, exist_ok=True)
    Path(outdir, "plans", name, "plan.json").write_text(json.dumps(plan))
    Path(outdir, "plans", name, "cdk.tf.json").write_text("{}")
    Path(outdir, "stacks", name, "cdk.tf.json").write_text("{}" if same_code else "{\"x\": 1}")


PRIOR = {"values": {"root_module": {"child_modules": [{"resources": [{"address": "a"}]}]}}}


def test_plan_summary_counts_and_reasons(tmp_path):
    _plan_files(tmp_path, "s", {"prior_state": PRIOR, "resource_changes": [
        {"address": "google_secret_manager_secret.k", "change": {"actions": ["delete", "create"]},
         "replace_paths": [["replication", "user_managed", "replicas", 0, "location"]], "action_reason": "replace_because_cannot_update"},
        {"address": "google_storage_bucket.b", "change": {"actions": ["create", "delete"]}},
        {"address": "google_compute_network.n", "change": {"actions": ["no-op"]}},
        {"address": "google_compute_network.m", "change": {"actions": ["update"]}},
        {"change": {"actions": ["delete"]}},
    ]})
    plan = review.plan_summary(tmp_path, "s")
    assert plan.empty_state is False
    assert plan.counts == {"replace": 2, "no-op": 1, "update": 1, "delete": 1}
    assert plan.changes["google_secret_manager_secret.k"] == (
        ["delete", "create"], ["replication.user_managed.replicas[0].location"], "replace_because_cannot_update")
    assert plan.changes["google_storage_bucket.b"] == (["create", "delete"], [], None)
    assert len(plan.changes) == 4


def test_plan_summary_of_empty_state_missing_or_other_code(tmp_path):
    _plan_files(tmp_path, "e", {"prior_state": {"values": {"root_module": {"child_modules": [{}]}}}, "resource_changes": []})
    assert review.plan_summary(tmp_path, "e").empty_state is True
    _plan_files(tmp_path, "o", {"resource_changes": []}, same_code=False)
    assert review.plan_summary(tmp_path, "o") is None
    assert review.plan_summary(tmp_path, "missing") is None


def test_a_real_plan_decides_what_is_replaced():
    secret = res("secret", SECRET, "secret_X", secret_id="k", replication={"auto": {}})
    moved = res("secret", SECRET, "secret_X", secret_id="k", replication={"user_managed": {"replicas": [{"location": "x"}]}})
    kept = res("kept", BUCKET, "kept_X", name="b", labels={"a": "1"})
    relabelled = res("kept", BUCKET, "kept_X", name="b", labels={"a": "2"})
    plan = review.Plan(False, {"replace": 1}, {
        "google_secret_manager_secret.secret_X": (["delete", "create"], ["replication"], "replace_because_cannot_update"),
        "google_storage_bucket.kept_X": (["update"], [], None),
        "google_storage_bucket.elsewhere": (["delete"], [], None)})
    diff = review.diff_stack("s", stack(secret, kept), stack(moved, relabelled), plan)
    assert diff.data_destruction == [
        f"`secret` ({SECRET}) is replaced (Terraform plan: replication; replace_because_cannot_update)"]
    no_reason = review.Plan(False, {}, {"google_secret_manager_secret.secret_X": (["delete", "create"], [], None)})
    assert review.diff_stack("s", stack(secret), stack(moved), no_reason).data_destruction == [
        f"`secret` ({SECRET}) is replaced (Terraform plan: no replace_paths given)"]
    # a plan against empty state decides nothing: the attribute rules do
    empty = review.Plan(True, {"create": 1}, {})
    assert review.diff_stack("s", stack(secret), stack(moved), empty).data_destruction == [
        f"`secret` ({SECRET}) is replaced: replication.auto, replication.user_managed.replicas[0].location changed"]


# ---------------------------------------------------------------- Markdown

def test_render_lists_destruction_first_then_counts_then_changes():
    before = stack(res("landing", BUCKET, name="a", labels={"env": "dev"}, force_destroy=False), res("gone", BUCKET, name="g"))
    after = stack(res("landing", BUCKET, name="b", labels={"env": "dev|x"}, force_destroy=True), res("new", "google_compute_network", name="n"))
    diff = review.diff_stack("dev-platform", before, after)
    assert review.render([diff, review.diff_stack("prod-platform", {}, {})], base="origin/main") == "\n".join([
        "## Infrastructure review against `origin/main`", "",
        "### :warning: Data resources destroyed or replaced", "",
        f"- **dev-platform**: `gone` ({BUCKET}) is removed",
        f"- **dev-platform**: `landing` ({BUCKET}) is replaced: name changed", "",
        "### :warning: Data protections weakened", "",
        "- **dev-platform**: `landing`: force_destroy False -> True", "",
        "| stack | added | removed | changed |", "|---|---|---|---|",
        "| dev-platform | 1 | 1 | 1 |", "| prod-platform | 0 | 0 | 0 |", "",
        "### dev-platform", "",
        "**Added**", "", "- `new` (google_compute_network)", "",
        "**Removed**", "", f"- `gone` ({BUCKET})", "",
        "**Changed**", "", "| resource | attribute | before | after |", "|---|---|---|---|",
        "| `landing` | `force_destroy` | `false` | `true` |",
        "| `landing` | `labels.env` | `dev` | <code>dev&#124;x</code> |",
        "| `landing` | `name` | `a` | `b` |", ""])


def test_render_without_changes_and_with_findings():
    text = review.render([review.diff_stack("s", {}, {})], base="b", findings={"checkov": ["CKV_X `a/b`: check"]})
    assert text == "\n".join(["## Infrastructure review against `b`", "", "| stack | added | removed | changed |", "|---|---|---|---|",
                              "| s | 0 | 0 | 0 |", "", "### New policy findings", "", "- checkov: CKV_X `a/b`: check", "",
                              "No infrastructure change in any environment.", ""])


def test_render_of_plans():
    diff = review.diff_stack("s", {}, {})
    changed = review.diff_stack("s", {}, stack(res("n", "google_compute_network", name="n")))
    offline = review.render([changed], base="b", plans={"s": review.Plan(True, {"create": 3}, {})}).splitlines()
    start = offline.index("### s")
    assert offline[start:start + 5] == ["### s", "", "Offline plan (`make validate`): Terraform accepts this stack. It ran against "
                                        "empty state, where every resource is a create, so it counts nothing about this change.", "",
                                        "**Added**"]
    assert "### s" not in review.render([diff], base="b", plans={"s": review.Plan(True, {}, {})})  # nothing to say
    real = review.Plan(False, {"replace": 1, "delete": 1, "no-op": 4, "update": 2}, {
        "b.x": (["delete", "create"], ["name"], "replace_because_cannot_update"), "c.y": (["delete"], [], None),
        "d.z": (["update"], [], None), "e.w": (["create", "delete"], [], "replace_by_request")})
    lines = review.render([diff], base="b", plans={"s": real}).splitlines()
    start = lines.index("### s")
    assert lines[start:start + 7] == ["### s", "", "Terraform plan: delete: 1, replace: 1, update: 2", "",
                                      "- **replace** `b.x` (because of name; replace_because_cannot_update)",
                                      "- **delete** `c.y`", "- **replace** `e.w` (replace_by_request)"]


@pytest.mark.parametrize("value, cell", [
    (None, "_(unset)_"), ("x", "`x`"), ("a`b", "<code>a`b</code>"), ("<b>", "<code>&lt;b&gt;</code>"), (3, "`3`"),
    ({"b": 1, "a": 2}, '`{"a": 2, "b": 1}`'), ("y" * 80, f"`{'y' * 80}`"),
    ("y" * 81, f"`{'y' * 60}…` (full value below)"),
])
def test_cells(value, cell):
    assert review._cell(value) == cell


def test_long_values_are_folded_as_a_diff():
    old, new = json.dumps({"k": "v" * 90, "same": 1}), json.dumps({"k": "w" * 90, "same": 1})
    folded = review._folded("fn", "env → PIPELINES_JSON", old, new)
    assert folded[0] == "<details><summary><code>fn</code> <code>env → PIPELINES_JSON</code>: full value</summary>"
    assert folded[2:4] == ["```diff", f"@@ -1,4 +1,4 @@\n {{\n-  \"k\": \"{'v' * 90}\",\n+  \"k\": \"{'w' * 90}\",\n   \"same\": 1\n }}"]
    assert folded[4:] == ["```", "", "</details>", ""]
    added = review._folded("fn", "script", None, "line 1\n```x```")
    assert added[3] == "@@ -0,0 +1,2 @@\n+line 1\n+`\u200b``x`\u200b``"
    unchanged_text = review._folded("fn", "script", "same", "same")
    assert unchanged_text[3] == "same"


# ---------------------------------------------------------------- the command

def _fake_review(monkeypatch, diffs):
    monkeypatch.setattr(review, "review", lambda base, head_out, scan: (diffs, f"report of {base} scan={scan}"))


def test_exit_codes_and_output(monkeypatch, tmp_path, capsys):
    destroyed = review.StackDiff("s", data_destruction=["`b` (google_storage_bucket) is removed"])
    _fake_review(monkeypatch, [destroyed])
    out = tmp_path / "review.md"
    assert review.main(["--base", "origin/main", "--output", str(out), "--scan"]) == 0
    assert out.read_text() == "report of origin/main scan=True"
    assert review.main(["--base", "x", "--fail-on-data-destruction"]) == review.EXIT_DATA_DESTRUCTION == 3
    assert capsys.readouterr().err == "review: data resources would be destroyed or replaced (see the top of the report)\n"
    _fake_review(monkeypatch, [review.StackDiff("s")])
    assert review.main(["--base", "x", "--fail-on-data-destruction"]) == 0
    assert capsys.readouterr() == ("report of x scan=False\n", "")

    def no_report(base, head_out, scan):
        raise review.ReviewError("BASE 'x' is not a commit in this repository")

    monkeypatch.setattr(review, "review", no_report)
    assert review.main(["--base", "x"]) == review.EXIT_NO_REPORT == 1
    captured = capsys.readouterr()
    assert captured.err == "review: BASE 'x' is not a commit in this repository\n" and captured.out == ""


def test_a_ref_that_is_no_commit_says_how_to_fetch_it():
    with pytest.raises(review.ReviewError, match=r"^BASE 'origin/no-such-branch-h5' is not a commit in this repository "
                                                 r"\(fetch it first: git fetch origin no-such-branch-h5\)$"):
        review.resolve_ref("origin/no-such-branch-h5")
    with pytest.raises(review.ReviewError, match=r"^BASE 'no-such-ref-h5' is not a commit in this repository$"):
        review.resolve_ref("no-such-ref-h5")


def test_guardrail_findings_read_the_report(tmp_path):
    assert review.guardrail_findings(tmp_path) == set()
    (tmp_path / "guardrails").mkdir()
    (tmp_path / "guardrails" / "report.json").write_text(json.dumps({"findings": [
        {"stack": "s", "rule": "GR-NET-007", "path": "fw", "message": "firewall rule has no log_config"}]}))
    assert review.guardrail_findings(tmp_path) == {"s: GR-NET-007 fw: firewall rule has no log_config"}


# ---------------------------------------------------------------- odd cases the mutation run found untested

def test_a_json_document_replaced_by_plain_text_is_one_change():
    doc = json.dumps({"a": 1})
    assert review.attribute_changes({"env": doc}, {"env": "plain"}) == [("env", doc, "plain")]
    assert review.attribute_changes({"env": "plain"}, {"env": doc}) == [("env", "plain", doc)]


def test_every_changed_document_attribute_is_reported():
    before = {"a": json.dumps({"x": 1}), "b": json.dumps({"y": 1}), "c": "1"}
    after = {"a": json.dumps({"x": 2}), "b": json.dumps({"y": 2}), "c": "2"}
    assert review.attribute_changes(before, after) == [("a → x", 1, 2), ("b → y", 1, 2), ("c", "1", "2")]


def test_a_diff_with_only_removals_or_only_additions_is_not_empty():
    assert not review.StackDiff("s", removed={"a": BUCKET}).empty
    assert not review.StackDiff("s", added={"a": BUCKET}).empty
    assert not review.StackDiff("s", changed={"a": (BUCKET, [])}).empty


def test_a_plan_without_the_code_it_planned_is_not_used(tmp_path):
    _plan_files(tmp_path, "s", {"resource_changes": []})
    (tmp_path / "plans" / "s" / "cdk.tf.json").unlink()
    assert review.plan_summary(tmp_path, "s") is None
    _plan_files(tmp_path, "t", {"resource_changes": []})
    (tmp_path / "stacks" / "t" / "cdk.tf.json").unlink()  # nothing synthesized to compare: the plan is taken as is
    assert review.plan_summary(tmp_path, "t") == review.Plan(True, {}, {})


def test_sections_follow_an_unchanged_stack():
    quiet = review.diff_stack("a-platform", {}, {})
    busy = review.diff_stack("b-platform", {}, stack(res("n", "google_compute_network", name="n")))
    text = review.render([quiet, busy], base="b")
    assert "### a-platform" not in text and "### b-platform\n\n**Added**\n\n- `n` (google_compute_network)\n" in text


@pytest.mark.parametrize("length, folded", [(80, False), (81, True)])
def test_values_longer_than_the_fold_limit_get_a_details_block(length, folded):
    before, after = stack(res("f", "google_cloudfunctions2_function", description="a")), \
        stack(res("f", "google_cloudfunctions2_function", description="b" * length))
    text = review.render([review.diff_stack("s", before, after)], base="b")
    assert ("<details>" in text) is folded


def test_folded_documents_are_sorted_and_keep_three_lines_of_context():
    old = {f"k{i}": i for i in range(10)}
    new = {**old, "k5": "five"}
    folded = review._folded("p", "a", json.dumps(dict(reversed(list(old.items())))), json.dumps(new))
    assert folded[3] == "\n".join(["@@ -4,7 +4,7 @@", '   "k2": 2,', '   "k3": 3,', '   "k4": 4,', '-  "k5": 5,', '+  "k5": "five",',
                                   '   "k6": 6,', '   "k7": 7,', '   "k8": 8,'])


def test_resolve_ref_names_the_commit():
    head = subprocess.run(["git", "-C", str(review.REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert review.resolve_ref("HEAD") == head


def test_a_branch_with_a_slash_is_fetched_by_its_whole_name():
    with pytest.raises(review.ReviewError, match=r"\(fetch it first: git fetch origin feature/no-such-h5\)$"):
        review.resolve_ref("origin/feature/no-such-h5")


def test_the_command_needs_a_base_and_describes_itself(capsys):
    with pytest.raises(SystemExit, match="^2$"):
        review.main([])
    assert "the following arguments are required: --base" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="^0$"):
        review.main(["--help"])
    assert "`make review BASE=<ref>`: what a change does to every environment, as Markdown." in " ".join(capsys.readouterr().out.split())


def test_the_default_head_output_is_the_repository_synth(monkeypatch):
    seen = []
    monkeypatch.setattr(review, "review", lambda base, head_out, scan: seen.append(head_out) or ([], ""))
    assert review.main(["--base", "x"]) == 0
    assert seen == [Path(__file__).resolve().parent.parent / "cdktf.out"]


def _tree(tmp_path: Path, main_py: str) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "main.py").write_text(main_py)
    return tree


@pytest.mark.parametrize("main_py, last", [
    ("import sys\nprint('a')\nsys.exit('line 1\\nthe last line')", "the last line"),
    ("import sys\nprint('only stdout\\nis here')\nsys.exit(1)", "is here"),
    ("import sys\nsys.exit(3)", "no output"),
])
def test_a_failing_synth_is_one_line(tmp_path, main_py, last):
    with pytest.raises(review.ReviewError, match=f"^the synth of BASE 'x' failed: {last}$"):
        review._synth(_tree(tmp_path, main_py), tmp_path / "out", "BASE 'x'")


def test_the_synth_runs_the_tree_with_its_outdir_and_every_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DP_ENVIRONMENTS", "dev")
    monkeypatch.setenv("ENVIRONMENTS_DIR", "/elsewhere")
    main_py = ("import json, os, sys\nopen(os.path.join(os.environ['CDKTF_OUTDIR'], 'env.json'), 'w').write(json.dumps("
               "{k: os.environ.get(k) for k in ('PYTHONPATH', 'DP_ENVIRONMENTS', 'ENVIRONMENTS_DIR')} | {'cwd': os.getcwd()}))")
    tree, out = _tree(tmp_path, main_py), tmp_path / "out"
    out.mkdir()
    review._synth(tree, out, "x")
    assert json.loads((out / "env.json").read_text()) == {"PYTHONPATH": str(tree), "DP_ENVIRONMENTS": None,
                                                          "ENVIRONMENTS_DIR": None, "cwd": str(tree)}


OLD_FINDING = {"stack": "s", "rule": "GR-NET-007", "path": "fw", "message": "no log_config"}
NEW_FINDING = {"stack": "s", "rule": "GR-SLO-001", "path": "slo", "message": "goal"}


def test_review_compares_the_base_synth_with_the_head_and_lists_new_findings(tmp_path, monkeypatch):
    head = tmp_path / "head"
    fake_synth_out(head, {"s": stack(res("b", BUCKET, name="b2")), "t": stack()}, [OLD_FINDING, NEW_FINDING])

    def synth_ref(ref, outdir):
        assert ref == "origin/main"
        fake_synth_out(outdir, {"s": stack(res("b", BUCKET, name="b1")), "gone": stack()}, [OLD_FINDING])

    monkeypatch.setattr(review, "synth_ref", synth_ref)
    scans = {"head": {"CKV_1 `s/b`: a", "CKV_2 `s/b`: b"}, "base": {"CKV_1 `s/b`: a"}}
    monkeypatch.setattr(review, "checkov_failures", lambda outdir, scan_dir: scans["head" if outdir == head else "base"])
    diffs, text = review.review("origin/main", head, scan=True)
    assert [d.stack for d in diffs] == ["gone", "s", "t"]
    assert diffs[1].data_destruction == [f"`b` ({BUCKET}) is replaced: name changed"]
    assert text.endswith("### New policy findings\n\n- guardrails: s: GR-SLO-001 slo: goal\n- checkov: CKV_2 `s/b`: b\n")
    _, unscanned = review.review("origin/main", head, scan=False)
    assert "checkov" not in unscanned


def test_review_synthesizes_the_working_tree_when_there_is_no_head_output(tmp_path, monkeypatch):
    calls = []

    def synth(tree, outdir, what):
        calls.append((tree, outdir, what))
        fake_synth_out(outdir, {"s": stack()})

    monkeypatch.setattr(review, "_synth", synth)
    monkeypatch.setattr(review, "synth_ref", lambda ref, outdir: fake_synth_out(outdir, {"s": stack()}))
    diffs, text = review.review("b", tmp_path / "head", scan=False)
    assert calls == [(review.REPO, tmp_path / "head", "the working tree")]
    assert text.endswith("No infrastructure change in any environment.\n")


def test_checkov_failures_by_check_and_path(tmp_path, monkeypatch):
    from dataplatform.tools import checkov_scan

    failure = checkov_scan.Failure("CKV_GCP_1", "Ensure x", "s", "s/b", "google_storage_bucket.b")
    result = checkov_scan.ScanResult(stacks=["s"], failed=[failure])
    monkeypatch.setattr(checkov_scan, "scan", lambda stacks_dir, out_dir: result)
    assert review.checkov_failures(tmp_path, tmp_path / "scan") == {"CKV_GCP_1 `s/b`: Ensure x"}
    result.problems.append("no */cdk.tf.json")
    with pytest.raises(review.ReviewError, match=r"^checkov scan unusable: no \*/cdk\.tf\.json$"):
        review.checkov_failures(tmp_path, tmp_path / "scan")


def test_synth_ref_checks_out_the_commit_synthesizes_it_and_removes_the_worktree(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(review, "_synth", lambda tree, outdir, what: seen.append(
        (subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(), outdir, what, tree)))
    review.synth_ref("HEAD", tmp_path / "out")
    ((commit, outdir, what, tree),) = seen
    assert (commit, outdir, what) == (review.resolve_ref("HEAD"), tmp_path / "out", "BASE 'HEAD'")
    assert not tree.exists()
    listed = subprocess.run(["git", "-C", str(review.REPO), "worktree", "list"], capture_output=True, text=True).stdout
    assert str(tree) not in listed


def test_a_commit_that_cannot_be_checked_out_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(review, "resolve_ref", lambda ref: "0" * 40)
    with pytest.raises(review.ReviewError, match=f"^cannot check out BASE 'gone': fatal: invalid reference: {'0' * 40}$"):
        review.synth_ref("gone", tmp_path / "out")
