"""Helpers to read synthesized Terraform JSON by construct path instead of hashed ids."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from dataplatform import tfjson

if TYPE_CHECKING:
    from cdktn import TerraformStack

    from dataplatform.guardrails.engine import Finding

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = REPO / "environments"


def environment_names() -> list[str]:
    """Every environment, from the files (nothing lists them by hand); cheap enough for parametrize."""
    return sorted(p.stem for p in ENVIRONMENTS.glob("*.yaml"))


def environment_data(name: str) -> dict:
    """The parsed YAML of environments/<name>.yaml (plain data, before validation)."""
    import yaml

    return yaml.safe_load((ENVIRONMENTS / f"{name}.yaml").read_text())


def line_of(text: str, fragment: str) -> int:
    """1-based line of the first line containing `fragment`."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def problems(data: dict) -> list[str]:
    """Every problem parse_environment finds in `data` (it must refuse it), read as
    environments/<its name>.yaml: each problem starts with that file."""
    import re

    import pytest

    from dataplatform.config import ConfigError, parse_environment

    source = f"environments/{data['name']}.yaml"
    with pytest.raises(ConfigError, match=f"^{re.escape(source)}:") as info:
        parse_environment(data, source, expected_name=data["name"])
    return info.value.problems


def problem(data: dict) -> str:
    """The one problem parse_environment finds in `data`."""
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


def stack_names() -> list[str]:
    from main import stack_names as of

    return [stack for env in environment_names() for stack in of(env)]


def iter_resources(stack: dict) -> Iterator[tuple[str, str, dict]]:
    """(resource type, construct path without stack prefix, body) for every resource.
    Testing.synth omits the "//" metadata; there the path is the logical id."""
    for r in tfjson.resources(stack):
        yield r.type, (r.relative_path if "/" in r.path else r.logical_id), r.body


def by_path(stack: dict) -> dict[str, tuple[str, dict]]:
    return {path: (rtype, body) for rtype, path, body in iter_resources(stack)}


def of_type(stack: dict, rtype: str) -> dict[str, dict]:
    return {path: body for t, path, body in iter_resources(stack) if t == rtype}


def new_stack() -> TerraformStack:
    """A throwaway stack with the provider, for construct tests."""
    from cdktn import Testing, TerraformStack
    from cdktn_provider_google.provider import GoogleProvider

    stack = TerraformStack(Testing.app(), "test")
    GoogleProvider(stack, "google", project="acme-test", region="europe-west1")
    return stack


def only(stack_json: dict, rtype: str) -> dict:
    items = list(of_type(stack_json, rtype).values())
    assert len(items) == 1, items
    return items[0]


def synth(stack: TerraformStack) -> dict:
    """Synthesize one test stack (aspects run) and parse it."""
    from cdktn import Testing

    return json.loads(Testing.synth(stack, run_validations=False))


# ---------------------------------------------------------------- one guardrail rule on one resource


def fired(rule_id: str, rtype: str, attrs: dict, **target) -> list[Finding]:
    """The findings of rule `rule_id` on one resource (`target`: further Target fields; the path
    defaults to "stack/thing"). The rule must apply to `rtype`: a case that no rule judges is a test bug."""
    from dataplatform.guardrails import RULES_BY_ID, Target
    from dataplatform.guardrails.engine import check_target

    findings, applied = check_target(Target(rtype, attrs, **{"path": "stack/thing", **target}), [RULES_BY_ID[rule_id]])
    assert applied == 1, f"{rule_id} does not apply to {rtype}"
    return findings


def errors(findings: list[Finding]) -> list[str]:
    """The messages of the findings that refuse synth (a warning does not)."""
    return [f.message for f in findings if f.severity.value == "error"]


def with_(base: dict, path: str, value) -> dict:
    """A deep copy of `base` with `path` (dotted; a number indexes a list) set to `value` (None deletes it)."""
    out = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return out


# ---------------------------------------------------------------- a small guarded app

LABELS = {"owner": "data-platform", "cost_center": "cc-1", "env": "dev", "managed_by": "cdktn"}
IAP = "35.235.240.0/20"


def guarded_app(tmp_path: Path, *stack_ids: str, outdir: str = "out", labels_first: bool = False, attach: int = 1):
    """An App writing to tmp_path/outdir and one stack per id, each with the provider, the guardrails
    (attached `attach` times: more changes nothing) and the label aspect (added after the guardrails
    unless labels_first: the order must not matter). Returns (app, [stacks])."""
    from cdktn import App, Aspects, TerraformStack
    from cdktn_provider_google.provider import GoogleProvider

    from dataplatform.guardrails import attach_guardrails
    from dataplatform.labels import StampLabels

    app = App(outdir=str(tmp_path / outdir))
    stacks = []
    for stack_id in stack_ids:
        stack = TerraformStack(app, stack_id)
        GoogleProvider(stack, "google", project="p", region="europe-west1")
        if labels_first:
            Aspects.of(stack).add(StampLabels(LABELS))
        for _ in range(attach):
            attach_guardrails(stack)
        if not labels_first:
            Aspects.of(stack).add(StampLabels(LABELS))
        stacks.append(stack)
    return app, stacks


def report(app) -> dict:
    """The guardrails report (report.json) of an app's last synth."""
    return json.loads((Path(app.outdir) / "guardrails" / "report.json").read_text())


def fake_synth_out(outdir: Path, stacks: dict[str, dict], findings: list[dict] = ()) -> None:
    """What a synth leaves in `outdir`, made by hand: the manifest, each stack's cdk.tf.json (name ->
    Terraform JSON) and a guardrails report listing `findings`."""
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = {"stacks": {name: {"synthesizedStackPath": f"stacks/{name}/cdk.tf.json"} for name in stacks}}
    (outdir / "manifest.json").write_text(json.dumps(manifest))
    for name, body in stacks.items():
        (outdir / "stacks" / name).mkdir(parents=True, exist_ok=True)
        (outdir / "stacks" / name / "cdk.tf.json").write_text(json.dumps(body))
    (outdir / "guardrails").mkdir(exist_ok=True)
    (outdir / "guardrails" / "report.json").write_text(json.dumps({"findings": list(findings)}))
