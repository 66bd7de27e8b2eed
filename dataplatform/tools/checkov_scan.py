"""Scan every synthesized stack with checkov and name each finding by its construct path.

    .venv/bin/python -m dataplatform.tools.checkov_scan [--stacks cdktf.out/stacks] [--out cdktf.out/scan]

Runs checkov (terraform_json, --skip-download, custom policies in policies/, skips with
reasons in .checkov.yaml), writes cli/json/SARIF/JUnit reports under --out, then prints one
line per failed check with the construct path read from the resource's "//" metadata in
cdk.tf.json (checkov itself only knows the hashed logical id). Exits 1 on any failed check,
and also when the scan could not have meant anything (no stack, nothing checked, parse
errors, custom policies not loaded), since a scan that checks nothing also "passes".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform import tfjson
from dataplatform.tfjson import manifest_stacks

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / ".checkov.yaml"
POLICIES = REPO / "policies"
# Custom policies that apply to resources every stack has: if they did not run, policies/ was not loaded.
SENTINEL_POLICIES = ("CKV_DP_2", "CKV_DP_3")


@dataclass
class Failure:
    check_id: str
    check_name: str
    stack: str
    path: str  # construct path, e.g. dev-platform/landing/bucket
    address: str  # Terraform address, e.g. google_storage_bucket.landing_bucket_34B0CCFA
    guideline: str | None = None

    def line(self) -> str:
        return f"FAILED {self.check_id} {self.path} ({self.address}): {self.check_name}"


@dataclass
class ScanResult:
    stacks: list[str]
    passed: int = 0
    failed: list[Failure] = field(default_factory=list)
    parsing_errors: list[str] = field(default_factory=list)
    by_check: dict[str, int] = field(default_factory=dict)  # check id -> resources evaluated
    skips: dict[str, str] = field(default_factory=dict)  # check id -> reason
    problems: list[str] = field(default_factory=list)  # reasons the scan itself is not trustworthy
    seconds: float = 0.0
    reports: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


def skip_reasons(config: Path = CONFIG) -> dict[str, str]:
    """`skip-check` items of .checkov.yaml with the comment block above each (shared by a group)."""
    reasons: dict[str, str] = {}
    in_skips, comment, last_was_item = False, [], False
    for raw in config.read_text().splitlines():
        line = raw.strip()
        if not raw.startswith((" ", "-", "#")) and line:
            in_skips = line.startswith("skip-check:")
            comment, last_was_item = [], False
            continue
        if not in_skips or not line:
            continue
        if line.startswith("#"):
            if last_was_item:
                comment, last_was_item = [], False
            comment.append(line.lstrip("#").strip())
        elif line.startswith("- "):
            check_id = line[2:].split("#", 1)[0].strip().strip("'\"")
            reasons[check_id] = " ".join(comment).strip()
            last_was_item = True
    return reasons


def construct_paths(stacks_dir: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(stack, logical id) -> (construct path, Terraform address), from the "//" metadata."""
    index = {}
    for tf_json in sorted(stacks_dir.glob("*/cdk.tf.json")):
        stack = tf_json.parent.name
        for r in tfjson.resources(json.loads(tf_json.read_text())):
            index[(stack, r.logical_id)] = (r.path, r.address)
    return index


def checkov_command(stacks_dir: Path, out_dir: Path, config: Path) -> list[str]:
    checkov = Path(sys.executable).with_name("checkov")
    return [str(checkov), "--config-file", str(config), "-d", str(stacks_dir),
            # repeated from the config on purpose: these must hold even if the config is edited
            "--framework", "terraform_json", "--skip-download", "--external-checks-dir", str(POLICIES),
            "-o", "cli", "-o", "json", "-o", "sarif", "-o", "junitxml", "--output-file-path", str(out_dir)]


def scan(stacks_dir: Path, out_dir: Path, config: Path = CONFIG) -> ScanResult:
    listed = manifest_stacks(stacks_dir.parent)
    stacks = sorted(listed) if listed else sorted(p.parent.name for p in stacks_dir.glob("*/cdk.tf.json"))
    leftovers = sorted(p.parent.name for p in stacks_dir.glob("*/cdk.tf.json") if listed and p.parent.name not in listed)
    result = ScanResult(stacks=stacks, skips=skip_reasons(config), reports=out_dir)
    if not stacks:
        result.problems.append(f"no */cdk.tf.json under {stacks_dir}: run `make synth` first")
    if leftovers:
        result.problems.append(f"{stacks_dir} holds stacks the last synth did not make ({', '.join(leftovers)}): run `make synth`")
        return result
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(checkov_command(stacks_dir, out_dir, config), cwd=REPO, capture_output=True, text=True)
    result.seconds = time.perf_counter() - started
    json_report = out_dir / "results_json.json"
    if not json_report.exists():
        result.problems.append(f"checkov wrote no JSON report (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return result
    reports = json.loads(json_report.read_text())
    reports = reports if isinstance(reports, list) else [reports]
    paths = construct_paths(stacks_dir)
    for report in reports:
        results = report.get("results", {})
        result.passed += len(results.get("passed_checks", []))
        result.parsing_errors += results.get("parsing_errors", [])
        for check in results.get("passed_checks", []) + results.get("failed_checks", []):
            result.by_check[check["check_id"]] = result.by_check.get(check["check_id"], 0) + 1
        for check in results.get("failed_checks", []):
            stack = check["file_path"].strip("/").split("/")[0]
            logical_id = check["resource"].split(".", 1)[-1]
            path, address = paths.get((stack, logical_id), (f"{stack}/?", check["resource"]))
            result.failed.append(Failure(check["check_id"], check["check_name"], stack, path, address, check.get("guideline")))
    if result.parsing_errors:
        result.problems.append(f"checkov could not parse: {', '.join(result.parsing_errors)}")
    if result.passed + len(result.failed) == 0:
        result.problems.append("checkov checked nothing (wrong framework or empty output?)")
    missing = [c for c in SENTINEL_POLICIES if c not in result.by_check]
    if missing:
        result.problems.append(f"custom policies {', '.join(missing)} did not run: policies/ not loaded (see {out_dir}/results_cli.txt)")
    unreasoned = sorted(c for c, reason in result.skips.items() if not reason)
    if unreasoned:
        result.problems.append(f"skips without a reason in {config.name}: {', '.join(unreasoned)}")
    return result


def summary(result: ScanResult) -> str:
    custom = sorted(c for c in result.by_check if c.startswith("CKV_DP_"))
    lines = [f"checkov on {', '.join(result.stacks) or '(no stacks)'}: {result.passed} passed, {len(result.failed)} failed "
             f"in {result.seconds:.1f}s; custom policies run: {', '.join(custom) or 'none'}"]
    lines += [f"  {f.line()}" for f in sorted(result.failed, key=lambda f: (f.stack, f.path, f.check_id))]
    grouped: dict[str, list[str]] = {}
    for check_id, reason in result.skips.items():
        grouped.setdefault(reason, []).append(check_id)
    lines += [f"  SKIPPED {', '.join(ids)}: {reason or '(NO REASON)'}" for reason, ids in grouped.items()]
    lines += [f"  PROBLEM {p}" for p in result.problems]
    if result.reports:
        lines.append(f"reports: {result.reports}/results_{{cli.txt,json.json,sarif.sarif,junitxml.xml}}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=Path, default=REPO / "cdktf.out" / "stacks")
    parser.add_argument("--out", type=Path, default=REPO / "cdktf.out" / "scan")
    parser.add_argument("--config", type=Path, default=CONFIG)
    args = parser.parse_args(argv)
    result = scan(args.stacks, args.out, args.config)
    print(summary(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
