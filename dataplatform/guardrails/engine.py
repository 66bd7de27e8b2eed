"""Runs the rule pack over every Terraform resource of a stack, on the cdk.tf.json cdktn wrote.

Rules read the stack's Terraform JSON as written (every resource's attributes after every
Aspect, escape-hatch override and token resolution: "${...}" for what is known at apply time),
whoever created the resource.

Why on the written file and not in a stack validation or an Aspect: an Aspect's visit runs
interleaved with the other aspects in tree order (an aspect added deeper in the tree runs
after ours), so it could see attributes before another aspect changed them; a validation sees
the final tree but has to ask for the stack's JSON through jsii (one more resolve of every
resource, and a JavaScript-to-Python copy of the document), and whatever it then changes (the
`depends_on`, the labels) costs a jsii round trip per resource. The written file is the final
document already: `check_written` reads it once, lets the stack finish it in Python (`prepare`),
runs the rules on exactly that, and writes it back, or removes it when an error refuses it.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from cdktn import TerraformStack
from constructs import IConstruct

from dataplatform.guardrails.rule import ERROR, WARNING, Rule, Severity, Target, Unverified
from dataplatform import comments, construct_tree, tfjson
from dataplatform.labels import LABEL_ATTRIBUTE_BY_TYPE, learn_label_attributes

SUPPRESS_METADATA = "guardrails:suppress"

# Rules about suppressions themselves (cannot be suppressed).
SUP_NO_REASON = Rule("GR-SUP-001", ERROR, "A suppression carries a written reason.",
                     'suppress(construct, "<rule id>", reason="why this is safe here")', ("*",), lambda t: None)
SUP_UNKNOWN = Rule("GR-SUP-002", ERROR, "A suppression names an existing rule id.",
                   "fix the rule id (see the rule catalogue in cdktf.out/guardrails/report.md)", ("*",), lambda t: None)
SUP_UNUSED = Rule("GR-SUP-003", WARNING, "A suppression still suppresses something.",
                  "remove the stale suppression", ("*",), lambda t: None)
META_RULES = (SUP_NO_REASON, SUP_UNKNOWN, SUP_UNUSED)


def suppress(construct: IConstruct, rule_id: str, *, reason: str = "") -> None:
    """Accept a rule's finding on `construct` and everything below it, for a written reason.

    Stored as construct metadata and listed in the guardrail report; a suppression without
    a reason is itself an error (GR-SUP-001).
    """
    construct.node.add_metadata(SUPPRESS_METADATA, {"rule": rule_id, "reason": reason.strip()})
    marked = _SUPPRESSED.setdefault(construct.node.root, [])
    if not any(c is construct for c in marked):
        marked.append(construct)


# Constructs carrying a suppression, per app: finding them costs one lookup instead of
# reading the metadata of every construct in the tree through jsii.
_SUPPRESSED: "weakref.WeakKeyDictionary[IConstruct, list[IConstruct]]" = weakref.WeakKeyDictionary()


def suppressions_in(stack: TerraformStack) -> list[Suppression]:
    found = []
    own = construct_tree.path(stack)
    for construct in _SUPPRESSED.get(stack.node.root, []):
        path = construct_tree.path(construct)
        if path != own and not path.startswith(own + "/"):
            continue
        for entry in construct.node.metadata:
            if entry.type == SUPPRESS_METADATA:
                data = entry.data or {}
                found.append(Suppression(str(data.get("rule", "")), str(data.get("reason") or "").strip(), path))
    return found


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    path: str
    type: str
    message: str
    fix: str

    def render(self) -> str:
        text = f"{self.rule} ({self.severity.value}) at {self.path} [{self.type}]: {self.message}. Fix: {self.fix}."
        if not self.rule.startswith("GR-SUP-"):
            text += f' Or, if it is safe here: suppress(<that construct>, "{self.rule}", reason="...")'
        return text

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity.value, "path": self.path, "type": self.type,
                "message": self.message, "fix": self.fix}


@dataclass
class Suppression:
    rule: str
    reason: str
    path: str
    used: int = 0

    def covers(self, finding: Finding) -> bool:
        return bool(self.reason) and self.rule == finding.rule and (
            finding.path == self.path or finding.path.startswith(self.path + "/"))


@dataclass
class StackResult:
    stack: str
    resources: int = 0
    checks: int = 0
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[tuple[Finding, Suppression]] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict, repr=False)
    """The stack's Terraform JSON the rules checked (what cdk.tf.json holds)."""

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is WARNING]


def stack_resources(doc: dict) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """Construct path -> (type, body, "//" comments) of every resource exactly as cdk.tf.json
    holds it (overrides merged, tokens resolved to "${...}")."""
    return {r.path: (r.type, r.body, r.comments) for r in tfjson.resources(doc)}


def check_target(target: Target, rules: Iterable[Rule]) -> tuple[list[Finding], int]:
    """Findings of every applicable rule on one resource, and how many rules applied."""
    findings, applied = [], 0
    for r in rules:
        if not r.applies_to(target.type):
            continue
        applied += 1
        message = r.check(target)
        if message:
            # A value known only at apply time cannot refuse synth; it is reported for review.
            severity = WARNING if isinstance(message, Unverified) else r.severity
            findings.append(Finding(r.id, severity, target.path, target.type, str(message), r.fix))
    return findings, applied


def evaluate_stack(stack: TerraformStack, rules: list[Rule], doc: dict) -> StackResult:
    """The rules' findings on every resource of `stack`; `doc`: its Terraform JSON (as cdk.tf.json holds it)."""
    result = StackResult(construct_tree.path(stack))
    known = {r.id for r in rules}
    result.suppressions = suppressions_in(stack)
    # The output is the truth (a moved resource is absent). Label attributes are known per type
    # once the labels were stamped on a class; only unknown types cost a walk of the tree.
    result.document = doc
    resources = stack_resources(doc)
    learn_label_attributes(stack, {rtype for rtype, _, _ in resources.values()})
    raw: list[Finding] = []
    for path, (rtype, attrs, notes) in resources.items():
        target = Target(rtype, attrs, path, LABEL_ATTRIBUTE_BY_TYPE.get(rtype), notes)
        findings, applied = check_target(target, rules)
        result.resources += 1
        result.checks += applied
        raw += findings

    for finding in raw:
        cover = next((s for s in result.suppressions if s.covers(finding)), None)
        if cover:
            cover.used += 1
            result.suppressed.append((finding, cover))
        else:
            result.findings.append(finding)

    for s in result.suppressions:
        if not s.reason:
            meta = SUP_NO_REASON, f"suppression of {s.rule} has no reason"
        elif s.rule not in known:
            meta = SUP_UNKNOWN, f"suppression names unknown rule {s.rule!r}"
        elif not s.used:
            meta = SUP_UNUSED, f"suppression of {s.rule} matches no finding"
        else:
            continue
        result.findings.append(Finding(meta[0].id, meta[0].severity, s.path, "suppression", meta[1], meta[0].fix))
    return result


def check_written(stack: TerraformStack, path: Path, rules: list[Rule],
                  prepare: Callable[[dict], dict] | None = None) -> StackResult:
    """Check the cdk.tf.json cdktn wrote for `stack` at `path`: the "//" comments recorded on its
    resources (dataplatform/comments.py) and `prepare(doc)` first finish it (`prepare` returns the
    document as it is to be written), the rules then check that document, which is written back; a
    stack with an error finding has its file removed (nothing refused can be planned)."""
    doc = comments.write(stack, json.loads(path.read_text()))
    if prepare is not None:
        doc = prepare(doc)
    result = evaluate_stack(stack, rules, doc)
    if result.errors:
        path.unlink()
    else:
        path.write_text(tfjson.dumps(doc))
    return result
