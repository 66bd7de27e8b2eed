"""Entry point: one bootstrap and one platform stack per environment file.

`build_app(outdir)` builds without synthesizing so tests and tools can reuse it;
`python main.py` synthesizes into cdktf.out/ and prints one line per stack.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from cdktn import App

from dataplatform import guardrails
from dataplatform.config import ENVIRONMENTS_DIR, ConfigError, Environment, load_environments
from dataplatform.stacks.bootstrap import BootstrapStack
from dataplatform.stacks.platform import PlatformStack


def build_app(outdir: str | os.PathLike = "cdktf.out", environments: list[Environment] | None = None) -> App:
    envs = environments if environments is not None else load_environments(Path(os.environ.get("ENVIRONMENTS_DIR", ENVIRONMENTS_DIR)))
    envs = selected_environments(envs, os.environ.get("DP_ENVIRONMENTS", ""))
    app = App(outdir=str(outdir))
    for env in envs:
        BootstrapStack(app, f"{env.name}-bootstrap", env)
        PlatformStack(app, f"{env.name}-platform", env)
    return app


def selected_environments(envs: list[Environment], names: str) -> list[Environment]:
    """Only the environments named in DP_ENVIRONMENTS (comma-separated), when it is set:
    `make diff/deploy ENV=x` synthesizes one environment, not all of them."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return envs
    known = {e.name for e in envs}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError([f"DP_ENVIRONMENTS: no environment file for {', '.join(map(repr, unknown))} "
                           f"(known: {', '.join(sorted(known))})"])
    return [e for e in envs if e.name in wanted]


def stack_summary(outdir: str | os.PathLike) -> list[tuple[str, int]]:
    """(stack, resource count) for every synthesized stack."""
    rows = []
    for path in sorted(Path(outdir, "stacks").glob("*/cdk.tf.json")):
        resources = json.loads(path.read_text()).get("resource", {})
        rows.append((path.parent.name, sum(len(v) for v in resources.values())))
    return rows


def main() -> int:
    outdir = os.environ.get("CDKTF_OUTDIR", "cdktf.out")
    try:
        app = build_app(outdir)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        summary = guardrails.synth(app)
    except guardrails.GuardrailError as exc:
        print(exc, file=sys.stderr)
        return 1
    for stack, count in stack_summary(outdir):
        print(f"{stack}: {count} resources")
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
