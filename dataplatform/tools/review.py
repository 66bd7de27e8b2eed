"""`make review BASE=<ref>`: what a change does to every environment, as Markdown.

Synthesizes BASE in a temporary git worktree and compares its stacks with the working tree's
synth (the stacks its manifest lists), resource by resource, keyed by construct path (stable
across the hashed logical ids), down to attribute paths:

- a reference that resolves to the literal it replaces (`acme-dev-temp` ->
  `${google_storage_bucket.temp_bucket_X.name}`, whose name is `acme-dev-temp`) is no change;
- a JSON document held in a string (`dags/pipelines.json`, environment variables) is compared
  key by key;
- long values are folded into `<details>` below each table.

Destruction of data resources is listed first. Where a real plan of the reviewed code exists
(`cdktf.out/plans/<stack>/plan.json` with prior state), Terraform's own `replace_paths` and
`action_reason` say what is replaced; otherwise the attributes known to force replacement do.
An offline plan against empty state (what `make validate` makes) creates everything: it is
reported as valid, without counts.

Exit status: 0 report written; 1 no report (BASE is not a commit, or a synth failed), one
line on stderr; 3 data would be destroyed or replaced and `--fail-on-data-destruction` was
given (`make review` exits 2 on any failure, as make does, and prints the tool's code as
"Error 1" / "Error 3").
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataplatform import tfjson
from dataplatform.tools import checkov_scan

REPO = Path(__file__).resolve().parents[2]
EXIT_NO_REPORT, EXIT_DATA_DESTRUCTION = 1, 3

DATA_TYPES = {
    "google_storage_bucket", "google_storage_managed_folder", "google_bigquery_dataset", "google_bigquery_table",
    "google_secret_manager_secret",
}
# Attributes whose change makes Terraform replace (destroy + create) the resource, nested ones
# included (`replication` covers `replication.user_managed.replicas[0].location`). Used only
# when no real plan of the change exists.
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
JSON_KEY = " → "  # attribute path -> key path inside a JSON document held in that attribute
FOLD_AT = 80


class ReviewError(Exception):
    """The review cannot be produced; the message is one line."""


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


@dataclass
class Plan:
    """What a saved `terraform show -json` plan says about one stack."""

    empty_state: bool
    counts: dict[str, int]
    # address -> (actions, replace_paths rendered, action_reason)
    changes: dict[str, tuple[list[str], list[str], str | None]]


def load_stacks(outdir: Path) -> dict[str, dict]:
    """The stacks the synth's manifest lists (a leftover directory is no stack)."""
    return {name: json.loads(path.read_text()) for name, path in tfjson.manifest_stacks(outdir).items()}


def resources(stack: dict) -> dict[str, tuple[str, dict]]:
    return {r.relative_path: (r.type, r.body) for r in tfjson.resources(stack)}


# ---------------------------------------------------------------- values

_REF = re.compile(r"\$\{([a-z][a-z0-9_]*)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}")


class Resolver:
    """Resolves `${type.logical_id.attr}` to the literal the stack gives that attribute, when it gives one."""

    def __init__(self, stack: dict | None):
        self.bodies = {r.address: r.body for r in tfjson.resources(stack or {})}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _REF.sub(self._literal, value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        return value

    def _literal(self, match: re.Match) -> str:
        literal = self.bodies.get(f"{match.group(1)}.{match.group(2)}", {}).get(match.group(3))
        return str(literal) if isinstance(literal, (str, int, float)) and not isinstance(literal, bool) else match.group(0)


def _json_document(value: Any) -> Any:
    """The parsed JSON object/array a string holds, else None."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, (dict, list)) else None
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out or ({prefix: {}} if prefix else {})  # an empty block is a value; an empty body is nothing
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, inner in enumerate(value):
            out.update(flatten(inner, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def attribute_changes(before: dict, after: dict, resolve_before: Resolver | None = None,
                      resolve_after: Resolver | None = None) -> list[tuple[str, Any, Any]]:
    """(attribute path, before, after) for every attribute whose resolved value differs."""
    a, b = flatten(before), flatten(after)
    ra, rb = resolve_before or (lambda v: v), resolve_after or (lambda v: v)
    changes = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key), b.get(key)
        if ra(old) == rb(new):
            continue
        if old == new:  # the same reference, to something that changed: show what it resolves to
            old, new = ra(old), rb(new)
        old_doc, new_doc = _json_document(old), _json_document(new)
        if (old_doc is not None or old is None) and (new_doc is not None or new is None) and (old_doc or new_doc) is not None:
            inner = attribute_changes({"": old_doc} if old_doc is not None else {}, {"": new_doc} if new_doc is not None else {}, ra, rb)
            changes += [(f"{key}{JSON_KEY}{path.removeprefix('.')}" if path else key, o, n) for path, o, n in inner]
            continue
        changes.append((key, old, new))
    return changes


def _replaces(rtype: str, attr: str) -> bool:
    root = re.split(r"\[| → ", attr, maxsplit=1)[0]
    return any(root == r or root.startswith(r + ".") for r in REPLACING_ATTRIBUTES.get(rtype, ()))


def diff_stack(name: str, base: dict | None, head: dict | None, plan: Plan | None = None) -> StackDiff:
    before, after = resources(base or {}), resources(head or {})
    resolve_before, resolve_after = Resolver(base), Resolver(head)
    planned = _planned_by_path(head, plan) if plan and not plan.empty_state else None
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
        changes = attribute_changes(before[path][1], after[path][1], resolve_before, resolve_after)
        if changes:
            result.changed[path] = (rtype, changes)
        if rtype in DATA_TYPES:
            if planned is not None:
                if path in planned and "delete" in planned[path][0]:
                    _, paths, reason = planned[path]
                    why = ", ".join(paths) or "no replace_paths given"
                    result.data_destruction.append(f"`{path}` ({rtype}) is replaced (Terraform plan: {why}"
                                                   f"{'; ' + reason if reason else ''})")
            else:
                replacing = [attr for attr, _, _ in changes if _replaces(rtype, attr)]
                if replacing:
                    result.data_destruction.append(f"`{path}` ({rtype}) is replaced: {', '.join(replacing)} changed")
        for attr, old, new in changes:
            if attr in WEAKENING and new == WEAKENING[attr] and old != new:
                result.weakened.append(f"`{path}`: {attr} {old!r} -> {new!r}")
    return result


# ---------------------------------------------------------------- plans


def _render_path(steps: list) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _has_resources(module: dict | None) -> bool:
    module = module or {}
    return bool(module.get("resources")) or any(_has_resources(child) for child in module.get("child_modules", []))


def plan_summary(outdir: Path, stack: str) -> Plan | None:
    """What a saved plan of exactly the reviewed code says, when `make validate` (or a real plan) saved one."""
    plan = Path(outdir, "plans", stack, "plan.json")
    planned, current = Path(outdir, "plans", stack, "cdk.tf.json"), Path(outdir, "stacks", stack, "cdk.tf.json")
    if not plan.exists() or not planned.exists() or (current.exists() and planned.read_bytes() != current.read_bytes()):
        return None  # no plan, or a plan of other code than the one reviewed
    data = json.loads(plan.read_text())
    empty = not _has_resources(((data.get("prior_state") or {}).get("values") or {}).get("root_module"))
    counts: dict[str, int] = {}
    changes = {}
    for change in data.get("resource_changes", []):
        actions = change["change"]["actions"]
        kind = "replace" if set(actions) == {"create", "delete"} else actions[0] if actions != ["no-op"] else "no-op"
        counts[kind] = counts.get(kind, 0) + 1
        if "address" in change:
            changes[change["address"]] = (actions, [_render_path(p) for p in change.get("replace_paths") or []],
                                          change.get("action_reason"))
    return Plan(empty, counts, changes)


def _planned_by_path(head: dict | None, plan: Plan) -> dict[str, tuple[list[str], list[str], str | None]]:
    by_address = {r.address: r.relative_path for r in tfjson.resources(head or {})}
    return {by_address[address]: change for address, change in plan.changes.items() if address in by_address}


# ---------------------------------------------------------------- Markdown


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _code(text: str) -> str:
    """Inline code safe inside a table cell (pipes and backticks escaped)."""
    if "`" in text or "|" in text or "<" in text:
        return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"
    return f"`{text}`"


def _cell(value: Any) -> str:
    if value is None:
        return "_(unset)_"
    text = _text(value)
    return _code(text) if len(text) <= FOLD_AT else _code(text[:FOLD_AT - 20] + "…") + " (full value below)"


def _folded(path: str, attr: str, old: Any, new: Any) -> list[str]:
    def lines(value: Any) -> list[str]:
        if value is None:
            return []
        doc = _json_document(value)
        return json.dumps(doc if doc is not None else value, indent=2, sort_keys=True).splitlines() if (
            doc is not None or not isinstance(value, str)) else value.splitlines() or [""]

    diff = difflib.unified_diff(lines(old), lines(new), "before", "after", lineterm="", n=3)
    body = "\n".join(list(diff)[2:]) or "\n".join(lines(new))
    return [f"<details><summary><code>{html.escape(path)}</code> <code>{html.escape(attr)}</code>: full value</summary>", "",
            "```diff", body.replace("```", "`\u200b``"), "```", "", "</details>", ""]


def render(diffs: list[StackDiff], *, base: str, findings: dict[str, list[str]] | None = None,
           plans: dict[str, Plan | None] | None = None) -> str:
    lines = [f"## Infrastructure review against `{base}`", ""]
    plans = plans or {}
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
        plan = plans.get(d.stack)
        real_plan = plan is not None and not plan.empty_state
        if d.empty and not real_plan:
            continue
        lines += [f"### {d.stack}", ""]
        if plan is not None and plan.empty_state:
            lines += ["Offline plan (`make validate`): Terraform accepts this stack. It ran against empty state, where "
                      "every resource is a create, so it counts nothing about this change.", ""]
        elif real_plan:
            lines += ["Terraform plan: " + ", ".join(f"{k}: {v}" for k, v in sorted(plan.counts.items()) if k != "no-op"), ""]
            for address, (actions, paths, reason) in sorted(plan.changes.items()):
                if "delete" in actions:
                    kind = "replace" if "create" in actions else "delete"
                    detail = "; ".join(filter(None, [", ".join(paths) and f"because of {', '.join(paths)}", reason]))
                    lines.append(f"- **{kind}** `{address}`" + (f" ({detail})" if detail else ""))
            lines.append("")
        for title, items in (("Added", d.added), ("Removed", d.removed)):
            if items:
                lines += [f"**{title}**", ""] + [f"- `{p}` ({t})" for p, t in items.items()] + [""]
        if d.changed:
            lines += ["**Changed**", "", "| resource | attribute | before | after |", "|---|---|---|---|"]
            folded = []
            for path, (_rtype, changes) in d.changed.items():
                for attr, old, new in changes:
                    lines.append(f"| `{path}` | {_code(attr)} | {_cell(old)} | {_cell(new)} |")
                    if max(len(_text(old)), len(_text(new))) > FOLD_AT:
                        folded += _folded(path, attr, old, new)
            lines += [""] + folded
    if findings:
        lines += ["### New policy findings", ""]
        lines += [f"- {source}: {item}" for source, items in findings.items() for item in items] or ["None."]
        lines.append("")
    if all(d.empty for d in diffs):
        lines += ["No infrastructure change in any environment.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- synth of BASE


def resolve_ref(ref: str) -> str:
    """The commit `ref` names, or ReviewError saying it names none."""
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        hint = f" (fetch it first: git fetch origin {ref.split('/', 1)[1]})" if ref.startswith("origin/") else ""
        raise ReviewError(f"BASE {ref!r} is not a commit in this repository{hint}")
    return result.stdout.strip()


def synth_ref(ref: str, outdir: Path) -> None:
    """Synthesize `ref` in a temporary worktree with this checkout's Python environment."""
    commit = resolve_ref(ref)
    with tempfile.TemporaryDirectory(prefix="review-base-") as tmp:
        tree = Path(tmp) / "tree"
        added = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), commit],
                               capture_output=True, text=True)
        if added.returncode != 0:
            raise ReviewError(f"cannot check out BASE {ref!r}: {(added.stderr.strip().splitlines() or ['git worktree failed'])[-1]}")
        try:
            _synth(tree, outdir, f"BASE {ref!r}")
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)


def _synth(tree: Path, outdir: Path, what: str) -> None:
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), "PYTHONPATH": str(tree)}
    env.pop("ENVIRONMENTS_DIR", None)
    env.pop("DP_ENVIRONMENTS", None)
    result = subprocess.run([sys.executable, "main.py"], cwd=tree, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise ReviewError(f"the synth of {what} failed: {last}")


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
        raise ReviewError("checkov scan unusable: " + "; ".join(result.problems))
    return {f"{f.check_id} `{f.path}`: {f.check_name}" for f in result.failed}


def review(base_ref: str, head_out: Path, scan: bool) -> tuple[list[StackDiff], str]:
    if not tfjson.manifest_stacks(head_out):
        _synth(REPO, head_out, "the working tree")
    with tempfile.TemporaryDirectory(prefix="review-") as tmp:
        base_out = Path(tmp) / "base.out"
        synth_ref(base_ref, base_out)
        base, head = load_stacks(base_out), load_stacks(head_out)
        findings = {}
        new_guardrails = sorted(guardrail_findings(head_out) - guardrail_findings(base_out))
        if new_guardrails:
            findings["guardrails"] = new_guardrails
        if scan:
            new_checkov = sorted(checkov_failures(head_out, Path(tmp) / "scan-head") - checkov_failures(base_out, Path(tmp) / "scan-base"))
            if new_checkov:
                findings["checkov"] = new_checkov
    plans = {name: plan_summary(head_out, name) for name in head}
    diffs = [diff_stack(name, base.get(name), head.get(name), plans.get(name)) for name in sorted(set(base) | set(head))]
    return diffs, render(diffs, base=base_ref, findings=findings or None, plans=plans)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git ref to compare against, e.g. origin/main")
    parser.add_argument("--head-out", default=str(REPO / "cdktf.out"), help="synth output of the working tree (synthesized if missing)")
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument("--fail-on-data-destruction", action="store_true", help="exit 3 when data resources are destroyed or replaced")
    parser.add_argument("--scan", action="store_true", help="also list checkov findings the change introduces (runs checkov twice)")
    args = parser.parse_args(argv)
    try:
        diffs, report = review(args.base, Path(args.head_out), args.scan)
    except ReviewError as exc:
        print(f"review: {exc}", file=sys.stderr)
        return EXIT_NO_REPORT
    print(report)
    if args.output:
        Path(args.output).write_text(report)
    if args.fail_on_data_destruction and any(d.data_destruction for d in diffs):
        print("review: data resources would be destroyed or replaced (see the top of the report)", file=sys.stderr)
        return EXIT_DATA_DESTRUCTION
    return 0


if __name__ == "__main__":
    sys.exit(main())
