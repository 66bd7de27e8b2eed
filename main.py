"""Entry point: one bootstrap and one platform stack per environment file.

`build_app(outdir)` builds without synthesizing so tests and tools can reuse it;
`python main.py` checks every environment file first (while the jsii kernel loads the provider
in the background: a bad file is refused in about half a second, nothing built, the kernel
killed), then synthesizes into cdktf.out/, removes the stacks of environments that no longer
exist, and prints one line per stack from the manifest.

`DP_ENVIRONMENTS=dev,prod` synthesizes only those environments (`make diff/deploy ENV=x`
set it); every file is still validated.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dataplatform.tfjson import manifest_stacks

if TYPE_CHECKING:
    from cdktn import App

    from dataplatform.config import Environment

SELECT_VAR = "DP_ENVIRONMENTS"
COMPLETE = ".all-environments"
"""Stamp in the output directory: the last synth covered every environment (make's scan/validate/review target)."""


STACK_KINDS = ("bootstrap", "platform")
SYNTH_MODULES = ["cdktn_provider_google._jsii", "dataplatform.guardrails", "dataplatform.stacks.bootstrap", "dataplatform.stacks.platform"]
"""What a synth imports (the provider's assembly first: the kernel's long load)."""
KERNEL_GRACE_S = 2.0
"""How long the environment files wait for cdktn's own import before they are read anyway."""


def stack_names(env: str) -> list[str]:
    """The stacks of one environment, in deploy order."""
    return [f"{env}-{kind}" for kind in STACK_KINDS]


def environments_dir() -> Path:
    from dataplatform.config import ENVIRONMENTS_DIR

    return Path(os.environ.get("ENVIRONMENTS_DIR", ENVIRONMENTS_DIR))


def select(envs: list[Environment], names: str | None = None) -> list[Environment]:
    """The environments named in DP_ENVIRONMENTS (comma-separated), all when it is unset or empty."""
    names = os.environ.get(SELECT_VAR, "") if names is None else names
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return envs
    from dataplatform.config import ConfigError
    from dataplatform.config_loader import did_you_mean

    known = [e.name for e in envs]
    unknown = [f"{SELECT_VAR}: no environment {n!r}" + (f" (did you mean {did_you_mean(n, known)!r}?)" if did_you_mean(n, known) else
                                                       f"; known: {', '.join(known)}") for n in wanted if n not in known]
    if unknown:
        raise ConfigError(unknown)
    return [e for e in envs if e.name in wanted]


def build_app(outdir: str | os.PathLike = "cdktf.out", environments: list[Environment] | None = None) -> App:
    from cdktn import App

    from dataplatform import construct_tree
    from dataplatform.config import load_environments
    from dataplatform.stacks.bootstrap import BootstrapStack
    from dataplatform.stacks.platform import PlatformStack

    envs = environments if environments is not None else select(load_environments(environments_dir()))
    construct_tree.install()  # paths and stacks of constructs without a jsii read each
    app = App(outdir=str(outdir))
    for env in envs:
        bootstrap, platform = stack_names(env.name)
        BootstrapStack(app, bootstrap, env)
        PlatformStack(app, platform, env)
    return app


def stack_summary(outdir: str | os.PathLike) -> list[tuple[str, int]]:
    """(stack, resource count) for every stack of the last synth."""
    rows = []
    for name, path in manifest_stacks(outdir).items():
        resources = json.loads(path.read_text()).get("resource", {})
        rows.append((name, sum(len(v) for v in resources.values())))
    return rows


def prune(outdir: str | os.PathLike, declared: set[str]) -> list[str]:
    """Remove stack directories the manifest does not list, unless their environment is declared
    but was not selected this time (DP_ENVIRONMENTS). Returns the removed stack names."""
    stacks_dir = Path(outdir, "stacks")
    current = set(manifest_stacks(outdir))
    removed = []
    for directory in sorted(stacks_dir.iterdir()) if stacks_dir.is_dir() else []:
        env = directory.name.split("-", 1)[0]
        if directory.is_dir() and directory.name not in current and env not in declared:
            shutil.rmtree(directory)
            removed.append(directory.name)
    return removed


def main() -> int:
    outdir = Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
    from dataplatform import jsii_channel

    # cdktn records a JavaScript stack trace with every token and computed attribute it creates,
    # only to print it if that token cannot be resolved; those frames are the jsii kernel's,
    # never this code's, and capturing them is ~0.1 s of a synth (CDKTN_DISABLE_CREATION_STACK=0 keeps them).
    os.environ.setdefault("CDKTN_DISABLE_CREATION_STACK", "1")
    # The environment files are read while the kernel loads the provider (2.5 s of Node, Python
    # idle); nothing is built before every file is valid, and a refusal does not wait for the load
    # (nor, past KERNEL_GRACE_S, for a kernel that is slow to start).
    kernel = jsii_channel.Preload(["cdktn"], SYNTH_MODULES)
    kernel.python_done.wait(timeout=KERNEL_GRACE_S)
    from dataplatform.config import ConfigError, load_environments

    try:
        declared = load_environments(environments_dir())
        envs = select(declared)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"synth: {len(exc.problems)} problem(s) in the environment files; nothing was synthesized", file=sys.stderr)
        return 2
    everything = len(envs) == len(declared)
    print(f"synth: {', '.join(e.name for e in envs)}{'' if everything else ' (' + SELECT_VAR + ')'} ...", flush=True)
    Path(outdir, COMPLETE).unlink(missing_ok=True)
    kernel.wait()
    import gc

    from dataplatform import guardrails

    # Everything imported so far lives until exit: out of the collector's way (each full collection
    # would walk the provider bindings' ~100k objects again while the stacks are built).
    gc.freeze()
    app = build_app(outdir, envs)
    try:
        summary = guardrails.synth(app)
    except guardrails.GuardrailError as exc:
        print(exc, file=sys.stderr)
        return 1
    selected = {e.name for e in envs}
    removed = prune(outdir, {e.name for e in declared} - selected)
    for stack, count in stack_summary(outdir):
        print(f"{stack}: {count} resources")
    if removed:
        print(f"removed the output of stacks that no longer exist: {', '.join(removed)}")
    print(summary)
    if everything:
        Path(outdir, COMPLETE).touch()
    return 0


def run() -> int:
    """`main()`, then the jsii kernel killed rather than asked to exit: every file is written by then,
    and a kernel that exits tears its heap down first (~0.1 s); a refused synth does not wait for
    the provider's load either."""
    from dataplatform import jsii_channel

    try:
        return main()
    finally:
        jsii_channel.kill()


if __name__ == "__main__":
    sys.exit(run())
