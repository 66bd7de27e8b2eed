"""`synth(app)`: cdktn's synth, then the rule pack on every guarded stack's cdk.tf.json, and the
guardrail report (cdktf.out/guardrails/report.json + report.md).

Every guarded stack is checked, refused or not, so one synth reports every finding; the report
is written when synth is refused too (that is when it is read), and lists as not evaluated the
stacks a failure stopped before their check.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cdktn import App, TerraformStack

from dataplatform import construct_tree, tfjson
from dataplatform.guardrails.engine import META_RULES, StackResult, check_written
from dataplatform.guardrails.rule import Rule

REPORT_DIR = "guardrails"


class GuardrailError(Exception):
    """Synth refused by error findings; the message lists each with path, rule and fix."""


@dataclass(frozen=True)
class Attachment:
    """What `attach_guardrails` registered for a stack: its rules and its last change (`prepare`)."""

    rules: list[Rule]
    prepare: Callable[[dict], dict] | None = None


attached: "weakref.WeakKeyDictionary[TerraformStack, Attachment]" = weakref.WeakKeyDictionary()
"""Guarded stacks (kept here: reading construct metadata is a jsii round trip)."""


@dataclass
class _Run:
    app: App
    rules: list[Rule]
    stacks: list[str]
    """The app's stacks, in synth order (read once: the tree does not change while it synthesizes)."""
    results: dict[str, StackResult] = field(default_factory=dict)


_RUNS: dict[str, _Run] = {}  # by output directory


def _key(app: App) -> str:
    return str(Path(app.outdir).resolve())


def report_dir(app: App) -> Path:
    return Path(app.outdir) / REPORT_DIR


def results(app: App) -> dict[str, StackResult]:
    """Results of the stacks evaluated in `app`'s latest synth (empty if none)."""
    run = _RUNS.get(_key(app))
    return dict(run.results) if run and run.app is app else {}


def report_data(app: App) -> dict:
    run = _RUNS[_key(app)]
    stacks = {}
    for name in run.stacks:
        res = run.results.get(name)
        if res is None:
            stacks[name] = {"status": "not evaluated (the synth failed before its check)"}
            continue
        stacks[name] = {
            "status": "refused" if res.errors else "passed",
            "resources": res.resources,
            "rule_checks": res.checks,
            "errors": len(res.errors),
            "warnings": len(res.warnings),
            "findings": [f.as_dict() for f in res.findings],
            "suppressed": [{**f.as_dict(), "reason": s.reason, "suppressed_at": s.path} for f, s in res.suppressed],
            "suppressions": [{"rule": s.rule, "path": s.path, "reason": s.reason, "matched": s.used} for s in res.suppressions],
        }
    rules = [*run.rules, *META_RULES]
    return {
        "rules": [{"id": r.id, "severity": r.severity.value, "description": r.description, "fix": r.fix,
                   "resource_types": list(r.resource_types)} for r in rules],
        "rule_count": len(run.rules),
        "stacks": stacks,
        # Flat lists across stacks (what tools such as `make review` compare between two synths).
        "findings": [{"stack": name, **f} for name, s in stacks.items() for f in s.get("findings", [])],
        "suppressed": [{"stack": name, **f} for name, s in stacks.items() for f in s.get("suppressed", [])],
    }


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(data: dict) -> str:
    lines = ["# Guardrail report", "", f"{data['rule_count']} rules (plus {len(META_RULES)} about suppressions) "
             "run on every Terraform resource of every stack at synth.", "",
             "| stack | status | resources | rule checks | errors | warnings | suppressed |", "|---|---|---|---|---|---|---|"]
    for name, s in data["stacks"].items():
        lines.append(f"| {name} | {s['status']} | {s.get('resources', '')} | {s.get('rule_checks', '')} | "
                     f"{s.get('errors', '')} | {s.get('warnings', '')} | {len(s.get('suppressed', []))} |")
    for name, s in data["stacks"].items():
        if s.get("findings"):
            lines += ["", f"## Findings: {name}", "", "| rule | severity | construct path | type | message | fix |", "|---|---|---|---|---|---|"]
            lines += [f"| {f['rule']} | {f['severity']} | `{f['path']}` | {f['type']} | {_cell(f['message'])} | {_cell(f['fix'])} |"
                      for f in s["findings"]]
        if s.get("suppressions"):
            lines += ["", f"## Suppressions: {name}", "", "| rule | on construct | reason | findings suppressed |", "|---|---|---|---|"]
            lines += [f"| {x['rule']} | `{x['path']}` | {_cell(x['reason']) or '**(none)**'} | {x['matched']} |" for x in s["suppressions"]]
    lines += ["", "## Rules", "", "| id | severity | rule | fix | resource types |", "|---|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['severity']} | {_cell(r['description'])} | {_cell(r['fix'])} | {_cell(', '.join(r['resource_types']))} |"
              for r in data["rules"]]
    return "\n".join(lines) + "\n"


def write_report(app: App) -> Path:
    """Write report.json and report.md for `app`'s latest synth; returns the directory."""
    out = report_dir(app)
    out.mkdir(parents=True, exist_ok=True)
    data = report_data(app)
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(render_markdown(data))
    return out


def synth(app: App) -> str:
    """`app.synth()`, then every guarded stack's check (`check_written`); a GuardrailError with a
    readable message if any refused. Returns a one-line summary (errors, warnings, suppressions,
    where the report is)."""
    app.synth()
    written = tfjson.manifest_stacks(app.outdir)
    stacks = {construct_tree.path(c): c for c in app.node.children if isinstance(c, TerraformStack)}
    guarded = {name: attached[stack] for name, stack in stacks.items() if stack in attached}
    run = _RUNS[_key(app)] = _Run(app, next((a.rules for a in guarded.values()), []), list(stacks))
    try:
        for name, attachment in guarded.items():
            run.results[name] = check_written(stacks[name], written[name], attachment.rules, attachment.prepare)
    finally:
        if run.results:
            write_report(app)
    done = run.results.values()
    errors = [f for r in done for f in r.errors]
    if errors:
        listing = "\n".join(f"  - {f.render()}" for f in errors)
        raise GuardrailError(f"guardrails refused synth ({len(errors)} error(s)):\n{listing}\n"
                             f"report: {report_dir(app) / 'report.md'}")
    return (f"guardrails: {sum(len(r.errors) for r in done)} errors, {sum(len(r.warnings) for r in done)} warnings, "
            f"{sum(len(r.suppressed) for r in done)} suppressed ({report_dir(app) / 'report.md'})")
