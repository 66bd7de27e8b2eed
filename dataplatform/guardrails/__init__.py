"""Guardrails: a rule pack checked on every Terraform resource of every stack at synth.

    attach_guardrails(stack)                      # once per stack (EnvironmentStack does it)
    suppress(construct, "GR-NET-002", reason="")  # accept one finding, with a written reason
    synth(app)                                    # app.synth(), then the rules on what it wrote

Rules inspect the final attributes of every resource in the stack, whoever created it
(our constructs, raw provider classes, escape-hatch overrides). Errors refuse synth naming
the construct path, rule id and fix; warnings only go to cdktf.out/guardrails/report.*.
"""

from __future__ import annotations

from typing import Callable

from cdktn import TerraformStack

from dataplatform.guardrails import ci, compute, data, iam, labels, logs, ml, names, network, processing, slo, storage
from dataplatform.guardrails.engine import META_RULES, Finding, StackResult, evaluate_stack, suppress
from dataplatform.guardrails.report import Attachment, GuardrailError, attached, results, synth, write_report
from dataplatform.guardrails.rule import Rule, Severity, Target

RULES: list[Rule] = [*storage.RULES, *iam.RULES, *network.RULES, *compute.RULES, *data.RULES, *labels.RULES, *names.RULES,
                      *logs.RULES, *ci.RULES, *processing.RULES, *ml.RULES, *slo.RULES]
RULES_BY_ID = {r.id: r for r in RULES}
if len(RULES_BY_ID) != len(RULES):
    raise ValueError("duplicate rule id")


def attach_guardrails(stack: TerraformStack, rules: list[Rule] | None = None,
                      prepare: Callable[[dict], dict] | None = None) -> None:
    """Check every resource of `stack` when `synth(app)` has written it.

    `prepare(doc)`: a last change to the stack's Terraform JSON, made in Python on the document
    cdktn wrote and returning it as it is to be written (the rules check what it returns)."""
    if not isinstance(stack, TerraformStack):
        raise TypeError(f"guardrails attach to a TerraformStack, not {type(stack).__name__}: they check what each stack writes")
    if stack not in attached:
        attached[stack] = Attachment(list(rules or RULES), prepare)


__all__ = ["RULES", "RULES_BY_ID", "META_RULES", "Finding", "GuardrailError", "Rule", "Severity", "StackResult", "Target",
           "attach_guardrails", "attached", "evaluate_stack", "results", "suppress", "synth", "write_report"]
