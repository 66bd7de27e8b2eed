"""The guardrail engine and report on small apps: exact counts, which suppression covers what,
the order of meta findings, stacks not evaluated, a second app in the same output directory,
and the attribute helpers every rule reads through."""

from __future__ import annotations

import json

import pytest

from dataplatform.guardrails import RULES, Severity, Target
from dataplatform.guardrails import rule as r
from dataplatform.guardrails.engine import Finding, StackResult, Suppression
from tests.support import IAP, guarded_app, report

# The apps here attach the guardrails twice (attach=2): a second attach changes nothing.


def firewall(scope, id_: str, *, logged: bool, ranges=(IAP,)):
    from cdktn_provider_google.compute_firewall import ComputeFirewall, ComputeFirewallAllow

    extra = {"log_config": {"metadata": "INCLUDE_ALL_METADATA"}} if logged else {}
    return ComputeFirewall(scope, id_, name=id_, network="vpc", source_ranges=list(ranges),
                           allow=[ComputeFirewallAllow(protocol="tcp", ports=["22"])], **extra)


def checks_of(rtype: str) -> int:
    return sum(rule.applies_to(rtype) for rule in RULES)


def test_counts_suppressions_and_meta_findings_exactly(tmp_path):
    from dataplatform.guardrails import suppress, synth

    app, (stack,) = guarded_app(tmp_path, "s", attach=2)
    fw = firewall(stack, "fw", logged=False)
    firewall(stack, "fw2", logged=False)  # "s/fw2" is not below "s/fw": its finding stays
    suppress(fw, "GR-NET-007", reason="  test rule  ")
    suppress(fw, "GR-NET-001", reason="never fires here")
    summary = synth(app)
    s = report(app)["stacks"]["s"]
    assert (s["status"], s["resources"], s["rule_checks"], s["errors"], s["warnings"]) == (
        "passed", 2, 2 * checks_of("google_compute_firewall"), 0, 2)
    assert [(f["rule"], f["path"], f["severity"]) for f in s["findings"]] == [
        ("GR-NET-007", "s/fw2", "warning"), ("GR-SUP-003", "s/fw", "warning")]
    assert [(f["rule"], f["path"], f["reason"], f["suppressed_at"]) for f in s["suppressed"]] == [
        ("GR-NET-007", "s/fw", "test rule", "s/fw")]
    assert s["suppressions"] == [{"rule": "GR-NET-007", "path": "s/fw", "reason": "test rule", "matched": 1},
                                 {"rule": "GR-NET-001", "path": "s/fw", "reason": "never fires here", "matched": 0}]
    assert summary == f"guardrails: 0 errors, 2 warnings, 1 suppressed ({tmp_path / 'out' / 'guardrails' / 'report.md'})"
    text = (tmp_path / "out" / "guardrails" / "report.json").read_text()
    assert text.startswith('{\n  "rules": [\n    {\n      "id": ') and text.endswith("}\n")


def test_meta_findings_follow_a_used_suppression_and_refuse_synth(tmp_path):
    from dataplatform.guardrails import GuardrailError, suppress, synth

    app, (first, second, third) = guarded_app(tmp_path, "a", "b", "c", attach=2)
    fw = firewall(first, "fw", logged=False)
    suppress(fw, "GR-NET-007", reason="used")
    suppress(fw, "GR-NET-002", reason="")
    suppress(fw, "GR-XXX-001", reason="typo")
    firewall(second, "ok", logged=True)
    with pytest.raises(GuardrailError, match=r"^guardrails refused synth \(2 error\(s\)\):\n  - GR-SUP-001 \(error\) at a/fw "
                                             r"\[suppression\]: suppression of GR-NET-002 has no reason\. Fix: "):
        synth(app)
    data = report(app)
    a = data["stacks"]["a"]
    assert (a["status"], a["errors"], a["warnings"]) == ("refused", 2, 0)
    assert [(f["rule"], f["message"]) for f in a["findings"]] == [
        ("GR-SUP-001", "suppression of GR-NET-002 has no reason"), ("GR-SUP-002", "suppression names unknown rule 'GR-XXX-001'")]
    # A refusal does not stop the others' checks (every finding in one synth); only the refused stack's file goes.
    assert [(data["stacks"][s]["status"], data["stacks"][s]["resources"]) for s in "bc"] == [("passed", 1), ("passed", 0)]
    assert [f["stack"] for f in data["findings"]] == ["a", "a"]
    assert [(s, (tmp_path / "out" / "stacks" / s / "cdk.tf.json").exists()) for s in "abc"] == [("a", False), ("b", True), ("c", True)]
    md = (tmp_path / "out" / "guardrails" / "report.md").read_text()
    assert "| a | refused | 1 | " in md and "| b | passed | 1 | " in md
    assert "| GR-NET-002 | `a/fw` | **(none)** | 0 |" in md


def test_a_stack_whose_last_change_fails_stops_the_synth_and_the_report_says_what_was_not_checked(tmp_path):
    from dataplatform.guardrails import attach_guardrails, attached, synth

    app, (first, second, third) = guarded_app(tmp_path, "a", "b", "c")

    def broken(doc):
        raise RuntimeError("prepare failed")

    del attached[second]
    attach_guardrails(second, prepare=broken)
    with pytest.raises(RuntimeError, match="^prepare failed$"):
        synth(app)
    data = report(app)
    assert [data["stacks"][s]["status"] for s in "abc"] == [
        "passed", "not evaluated (the synth failed before its check)", "not evaluated (the synth failed before its check)"]


def test_the_checked_document_is_written_back_byte_for_byte_as_cdktn_writes(tmp_path):
    """What `prepare` returns is what cdk.tf.json holds, in cdktn's own format (sorted keys, 2-space indent)."""
    from dataplatform.guardrails import attach_guardrails, attached, synth

    app, (stack,) = guarded_app(tmp_path, "s")
    firewall(stack, "ok", logged=True)
    del attached[stack]
    attach_guardrails(stack, prepare=lambda doc: {**doc, "locals": {"note": "ü ${x}"}})
    synth(app)
    written = (tmp_path / "out" / "stacks" / "s" / "cdk.tf.json").read_text()
    doc = json.loads(written)
    assert doc["locals"] == {"note": "ü ${x}"}
    assert written == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) and not written.endswith("\n")


def test_a_finding_of_a_suppression_rule_offers_no_suppression():
    finding = Finding("GR-SUP-001", Severity.ERROR, "s/x", "suppression", "no reason", "add one")
    assert finding.render() == "GR-SUP-001 (error) at s/x [suppression]: no reason. Fix: add one."
    other = Finding("GR-NET-001", Severity.ERROR, "s/x", "google_compute_firewall", "open", "close it")
    assert other.render() == ('GR-NET-001 (error) at s/x [google_compute_firewall]: open. Fix: close it. '
                              'Or, if it is safe here: suppress(<that construct>, "GR-NET-001", reason="...")')


def test_results_split_errors_and_warnings():
    error = Finding("A", Severity.ERROR, "p", "t", "m", "f")
    warning = Finding("B", Severity.WARNING, "p", "t", "m", "f")
    result = StackResult("s", findings=[error, warning, error])
    assert (result.errors, result.warnings) == ([error, error], [warning])
    assert (StackResult("s").resources, StackResult("s").checks) == (0, 0)


@pytest.mark.parametrize("path, covered", [("s/fw", True), ("s/fw/inner", True), ("s/fw2", False), ("s", False)])
def test_a_suppression_covers_its_construct_and_below(path, covered):
    suppression = Suppression("GR-NET-007", "why", "s/fw")
    assert suppression.covers(Finding("GR-NET-007", Severity.WARNING, path, "t", "m", "f")) is covered
    assert not Suppression("GR-NET-007", "", "s/fw").covers(Finding("GR-NET-007", Severity.WARNING, "s/fw", "t", "m", "f"))
    assert not suppression.covers(Finding("GR-NET-001", Severity.WARNING, "s/fw", "t", "m", "f"))


def test_suppressions_belong_to_their_stack_only(tmp_path):
    from dataplatform.guardrails import suppress, synth

    app, (s, s2) = guarded_app(tmp_path, "s", "s2", attach=2)
    suppress(firewall(s2, "fw", logged=False), "GR-NET-007", reason="only in s2")
    firewall(s, "fw", logged=False)
    synth(app)
    stacks = report(app)["stacks"]
    assert [f["rule"] for f in stacks["s"]["findings"]] == ["GR-NET-007"] and stacks["s"]["suppressions"] == []
    assert stacks["s2"]["findings"] == [] and len(stacks["s2"]["suppressions"]) == 1


def test_a_suppression_in_another_stack_does_not_hide_the_ones_after_it(tmp_path):
    """The app's suppressions are scanned in the order they were made: one of another stack is
    skipped, and the scan goes on to this stack's own."""
    from dataplatform.guardrails import suppress, synth

    app, (s, s2) = guarded_app(tmp_path, "s", "s2")
    suppress(firewall(s2, "fw", logged=False), "GR-NET-007", reason="made first, in s2")
    suppress(firewall(s, "fw", logged=False), "GR-NET-007", reason="made second, in s")
    assert synth(app).startswith("guardrails: 0 errors, 0 warnings, 2 suppressed (")
    stacks = report(app)["stacks"]
    assert [(x["rule"], x["path"], x["reason"], x["matched"]) for x in stacks["s"]["suppressions"]] == [
        ("GR-NET-007", "s/fw", "made second, in s", 1)]
    assert [(x["rule"], x["path"], x["reason"], x["matched"]) for x in stacks["s2"]["suppressions"]] == [
        ("GR-NET-007", "s2/fw", "made first, in s2", 1)]
    assert (stacks["s"]["findings"], stacks["s2"]["findings"]) == ([], [])


def test_a_resource_type_not_seen_before_has_its_label_attribute_learned_from_the_stack(tmp_path, monkeypatch):
    """No label Aspect ran and the type is unknown: the check learns from the stack's tree which
    attribute holds its labels, so the unlabelled resource is refused (not skipped as unlabelable)."""
    from cdktn import App, TerraformStack
    from cdktn_provider_google.provider import GoogleProvider
    from cdktn_provider_google.pubsub_topic import PubsubTopic

    from dataplatform import labels
    from dataplatform.guardrails import RULES_BY_ID, evaluate_stack

    for rtype in list(labels.LABEL_ATTRIBUTE_BY_TYPE):
        monkeypatch.delitem(labels.LABEL_ATTRIBUTE_BY_TYPE, rtype)
    monkeypatch.setattr(labels, "_BY_CLASS", {})
    stack = TerraformStack(App(outdir=str(tmp_path / "out")), "s")
    GoogleProvider(stack, "google", project="p", region="europe-west1")
    PubsubTopic(stack, "topic", name="t")
    doc = {"resource": {"google_pubsub_topic": {"topic": {"name": "t", "//": {"metadata": {"path": "s/topic"}}}}}}
    result = evaluate_stack(stack, [RULES_BY_ID["GR-LBL-001"]], doc)
    assert labels.LABEL_ATTRIBUTE_BY_TYPE == {"google_pubsub_topic": "labels"}
    assert [(f.rule, f.path, f.message) for f in result.findings] == [
        ("GR-LBL-001", "s/topic", "labels lacks owner, cost_center, env, managed_by")]
    assert (result.resources, result.checks) == (1, 1)


def test_a_new_app_in_the_same_directory_starts_a_new_report(tmp_path):
    from dataplatform.guardrails import results, synth

    first, (a,) = guarded_app(tmp_path, "first", attach=2)
    firewall(a, "fw", logged=True)
    synth(first)
    second, (b,) = guarded_app(tmp_path, "second", attach=2)
    firewall(b, "fw", logged=True)
    synth(second)
    assert list(report(second)["stacks"]) == ["second"]
    assert list(results(second)) == ["second"] and results(first) == {}


# ---------------------------------------------------------------- attribute helpers

@pytest.mark.parametrize("value, expected", [({"a": 1}, {"a": 1}), ([{"a": 1}, {"b": 2}], {"a": 1}), ([], {}), (None, {}), ("x", {}), ([3], {})])
def test_block(value, expected):
    assert r.block(value) == expected


@pytest.mark.parametrize("value, expected", [({"a": 1}, [{"a": 1}]), ([{"a": 1}, 2, {"b": 2}], [{"a": 1}, {"b": 2}]), (None, []), ("x", [])])
def test_blocks(value, expected):
    assert r.blocks(value) == expected


def test_get_through_nested_blocks():
    attrs = {"a": [{"b": {"c": 0}}], "x": {"y": None}}
    assert r.get(attrs, "a.b.c") == 0
    assert r.get(attrs, "a.b.d", "default") == "default" and r.get(attrs, "x.y.z") is None and r.get(attrs, "q") is None


@pytest.mark.parametrize("value, true, false", [(True, True, False), (False, False, True), ("true", True, False), ("TRUE", True, False),
                                                ("false", False, True), ("False", False, True), (None, False, False), (1, False, False),
                                                ("yes", False, False)])
def test_is_true_is_false(value, true, false):
    assert (r.is_true(value), r.is_false(value)) == (true, false)


@pytest.mark.parametrize("value, expected", [(3, 3), (3.9, 3), ("12", 12), (" 12 ", 12), ("-1", None), ("1.5", None), (True, None),
                                             (None, None), ([1], None)])
def test_as_int(value, expected):
    assert r.as_int(value) == expected


def test_members_and_expect():
    assert list(r.members({"member": "a", "members": ["b", 3, "c"]})) == ["a", "b", "c"]
    assert list(r.members({"member": 1, "members": "x"})) == []
    assert r.expect(1, lambda v: v == 1, "bad") is None
    assert r.expect(2, lambda v: v == 1, "bad") == "bad"
    unknown = r.expect("${var.x}", lambda v: False, "bad")
    assert isinstance(unknown, r.Unverified) and unknown == "bad (cannot verify at synth: value is '${var.x}')"
    assert r.computed("a${b}") and not r.computed("a$b") and not r.computed(3)


def test_rules_apply_to_shell_patterns():
    rule = r.Rule("X", Severity.ERROR, "d", "f", ("google_*_iam_member", "google_storage_bucket"), lambda t: None)
    assert rule.applies_to("google_project_iam_member") and rule.applies_to("google_storage_bucket")
    assert not rule.applies_to("google_storage_bucket_iam_binding") and not rule.applies_to("google_project_iam_member_x")
    assert Target("t", {}).path == "" and Target("t", {}).metadata == {} and Target("t", {}).label_attribute is None
