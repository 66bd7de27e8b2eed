"""`make review BASE=<ref>`: what a change does to every environment, as Markdown.

Synthesizes BASE in a temporary git worktree and the working tree, then compares the
stacks resource by resource, keyed by construct path (stable across the hashed logical
ids), down to attribute paths. Destruction of data resources is listed first; with
`--fail-on-data-destruction` it makes the command fail. Offline: no credentials needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataplatform import tfjson
from dataplatform.tools import checkov_scan

REPO = Path(__file__).resolve().parents[2]

DATA_TYPES = {
    "google_storage_bucket", "google_storage_managed_folder", "google_bigquery_dataset", "google_bigquery_table",
    "google_secret_manager_secret",
}
# Attributes whose change makes Terraform replace (destroy + create) the resource.
REPLACING_ATTRIBUTES = {
    "google_storage_bucket": {"name", "location", "project"},
    "google_storage_managed_folder": {"name", "bucket"},
    "google_bigquery_dataset": {"dataset_id", "location", "project"},
    "google_bigquery_table": {"table_id", "dataset_id", "project", "time_partitioning.type"},
    "google_secret_manager_secret": {"secret_id", "project", "replication"},
}
# Changes that do not destroy now but remove a protection, so a later change could.
WEAKENING = {
    "lifecycle.prevent_destroy": False, "deletion_protection": False, "force_destroy": True,
    "delete_contents_on_destroy": True,
}


@dataclass
class StackDiff:
    stack: str
    added: dict[str, str] = field(default_factory=dict)  # path -> type
    removed: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, list[tuple[str, Any, Any]]]] = field(default_factory=dict)
    data_destruction: list[str] = field(default_factory=list)
    weakened: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def load_stacks(outdir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(outdir, "stacks").glob("*/cdk.tf.json"))}


def resources(stack: dict) -> dict[str, tuple[str, dict]]:
    return {r.relative_path: (r.type, r.body) for r in tfjson.resources(stack)}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, inner in enumerate(value):
            out.update(flatten(inner, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def attribute_changes(before: dict, after: dict) -> list[tuple[str, Any, Any]]:
    a, b = flatten(before), flatten(after)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _replaces(rtype: str, attr: str) -> bool:
    root = attr.split("[", 1)[0]
    return any(root == r or root.startswith(r + ".") for r in REPLACING_ATTRIBUTES.get(rtype, ()))


def diff_stack(name: str, base: dict | None, head: dict | None) -> StackDiff:
    before, after = resources(base or {}), resources(head or {})
    result = StackDiff(name)
    for path in sorted(set(after) - set(before)):
        result.added[path] = after[path][0]
    for path in sorted(set(before) - set(after)):
        rtype = before[path][0]
        result.removed[path] = rtype
        if rtype in DATA_TYPES:
            result.data_destruction.append(f"`{path}` ({rtype}) is removed")
    for path in sorted(set(before) & set(after)):
        rtype = after[path][0]
        changes = attribute_changes(before[path][1], after[path][1])
        if not changes:
            continue
        result.changed[path] = (rtype, changes)
        if rtype in DATA_TYPES:
            replacing = [attr for attr, _, _ in changes if _replaces(rtype, attr)]
            if replacing:
                result.data_destruction.append(f"`{path}` ({rtype}) is replaced: {', '.join(replacing)} changed")
        for attr, old, new in changes:
            if attr in WEAKENING and new == WEAKENING[attr] and old != new:
                result.weakened.append(f"`{path}`: {attr} {old!r} -> {new!r}")
    return result


def plan_actions(outdir: Path, stack: str) -> dict[str, int] | None:
    """Counts of create/update/replace/delete from a real plan, when `make validate` saved one."""
    plan = Path(outdir, "plans", stack, "plan.json")
    planned, current = Path(outdir, "plans", stack, "cdk.tf.json"), Path(outdir, "stacks", stack, "cdk.tf.json")
    if not plan.exists() or not planned.exists() or (current.exists() and planned.read_bytes() != current.read_bytes()):
        return None  # no plan, or a plan of other code than the one reviewed
    counts: dict[str, int] = {}
    for change in json.loads(plan.read_text()).get("resource_changes", []):
        actions = change["change"]["actions"]
        kind = "replace" if set(actions) == {"create", "delete"} else actions[0] if actions != ["no-op"] else "no-op"
        counts[kind] = counts.get(kind, 0) + 1
        if kind in ("replace", "delete") and "address" in change:
            counts[f"{kind}: {change['address']}"] = 1
    return counts


def _fmt(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    text = text if len(text) <= 80 else text[:77] + "..."
    return "_(unset)_" if value is None else f"`{text}`".replace("|", "\\|")


def render(diffs: list[StackDiff], *, base: str, findings: dict[str, list[str]] | None = None,
           plans: dict[str, dict[str, int] | None] | None = None) -> str:
    lines = [f"## Infrastructure review against `{base}`", ""]
    destruction = [(d.stack, item) for d in diffs for item in d.data_destruction]
    weakened = [(d.stack, item) for d in diffs for item in d.weakened]
    if destruction:
        lines += ["### :warning: Data resources destroyed or replaced", ""]
        lines += [f"- **{stack}**: {item}" for stack, item in destruction] + [""]
    if weakened:
        lines += ["### :warning: Data protections weakened", ""]
        lines += [f"- **{stack}**: {item}" for stack, item in weakened] + [""]
    lines += ["| stack | added | removed | changed |", "|---|---|---|---|"]
    lines += [f"| {d.stack} | {len(d.added)} | {len(d.removed)} | {len(d.changed)} |" for d in diffs] + [""]
    for d in diffs:
        if d.empty and not (plans or {}).get(d.stack):
            continue
        lines += [f"### {d.stack}", ""]
        plan = (plans or {}).get(d.stack)
        if plan:
            totals = {k: v for k, v in plan.items() if ":" not in k}
            lines += ["Real plan (offline, `make validate`): " + ", ".join(f"{k}: {v}" for k, v in sorted(totals.items())), ""]
            lines += [f"- **{k.split(': ', 1)[0]}** `{k.split(': ', 1)[1]}`" for k in sorted(plan) if ":" in k]
            lines += [""] if len(plan) > len(totals) else []
        for title, items in (("Added", d.added), ("Removed", d.removed)):
            if items:
                lines += [f"**{title}**", ""] + [f"- `{p}` ({t})" for p, t in items.items()] + [""]
        if d.changed:
            lines += ["**Changed**", "", "| resource | attribute | before | after |", "|---|---|---|---|"]
            for path, (rtype, changes) in d.changed.items():
                for attr, old, new in changes:
                    lines.append(f"| `{path}` | `{attr}` | {_fmt(old)} | {_fmt(new)} |")
            lines.append("")
    if findings:
        lines += ["### New policy findings", ""]
        lines += [f"- {source}: {item}" for source, items in findings.items() for item in items] or ["None."]
        lines.append("")
    if all(d.empty for d in diffs):
        lines += ["No infrastructure change in any environment.", ""]
    return "\n".join(lines)


def synth_ref(ref: str, outdir: Path) -> None:
    """Synthesize `ref` in a temporary worktree with this checkout's Python environment."""
    with tempfile.TemporaryDirectory(prefix="review-base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), ref], check=True)
        try:
            _synth(tree, outdir)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


def _synth(tree: Path, outdir: Path) -> None:
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PYTHONPATH": str(tree)}
    env.pop("ENVIRONMENTS_DIR", None)
    result = subprocess.run([sys.executable, "main.py"], cwd=tree, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"synth of {tree} failed:\n{result.stdout}{result.stderr}")


def guardrail_findings(outdir: Path) -> set[str]:
    report = Path(outdir, "guardrails", "report.json")
    if not report.exists():
        return set()
    data = json.loads(report.read_text())
    return {f"{f.get('stack')}: {f.get('rule')} {f.get('path')}: {f.get('message')}" for f in data.get("findings", [])}


def checkov_failures(outdir: Path, scan_dir: Path) -> set[str]:
    """Failed checkov checks of a synth output, by check id and construct path."""
    result = checkov_scan.scan(Path(outdir, "stacks"), scan_dir)
    if result.problems:
        raise SystemExit("review: checkov scan unusable: " + "; ".join(result.problems))
    return {f"{f.check_id} `{f.path}`: {f.check_name}" for f in result.failed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git ref to compare against, e.g. origin/main")
    parser.add_argument("--head-out", default=str(REPO / "cdktf.out"), help="synth output of the working tree (synthesized if missing)")
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument("--fail-on-data-destruction", action="store_true", help="exit 3 when data resources are destroyed or replaced")
    parser.add_argument("--scan", action="store_true", help="also list checkov findings the change introduces (runs checkov twice)")
    args = parser.parse_args(argv)

    head_out = Path(args.head_out)
    if not (head_out / "stacks").exists():
        _synth(REPO, head_out)
    with tempfile.TemporaryDirectory(prefix="review-") as tmp:
        base_out = Path(tmp) / "base.out"
        synth_ref(args.base, base_out)
        base, head = load_stacks(base_out), load_stacks(head_out)
        findings = {}
        new_guardrails = sorted(guardrail_findings(head_out) - guardrail_findings(base_out))
        if new_guardrails:
            findings["guardrails"] = new_guardrails
        if args.scan:
            new_checkov = sorted(checkov_failures(head_out, Path(tmp) / "scan-head") - checkov_failures(base_out, Path(tmp) / "scan-base"))
            if new_checkov:
                findings["checkov"] = new_checkov
    diffs = [diff_stack(name, base.get(name), head.get(name)) for name in sorted(set(base) | set(head))]
    plans = {name: plan_actions(head_out, name) for name in head}
    report = render(diffs, base=args.base, findings=findings or None, plans=plans)
    print(report)
    if args.output:
        Path(args.output).write_text(report)
    if args.fail_on_data_destruction and any(d.data_destruction for d in diffs):
        print("review: data resources would be destroyed or replaced (see the top of the report)", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
