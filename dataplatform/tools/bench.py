"""`make bench`: synth and test timings against the provider-import floor, and the cold start
of a fresh clone, as a table + JSON + PNG.

Each case runs in a fresh process (as `make synth` does), several times; the table shows
the median and the spread (min-max). Per-pipeline and per-environment costs are the slopes
of a least-squares line through the medians.

Cold start: `git clone` of this repository's HEAD into a temporary directory, then `make synth`
(several fresh clones) and `make test` (one), timed with the package caches as they are (run
the bench twice, or any make target once, to have them warm), and the size of each installed
environment. Only git, make and the targets themselves are used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
TARGETS = {"synth_over_floor": 1.3, "per_pipeline_s": 0.050, "per_environment_s": 0.5, "test_suite_s": 90.0,
           "cold_synth_s": 30.0, "cold_test_s": 180.0}
MAKE = ["make", "--no-print-directory", "-s"]
ENVIRONMENT_DIRS = (".venv", "workloads/.venv", "workloads/airflow/.venv", "node_modules")


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO, base: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB of the process tree it waited for)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        environ = {k: v for k, v in (os.environ if base is None else base).items() if k != "PYTHONDONTWRITEBYTECODE"}
        proc = subprocess.Popen(cmd, cwd=cwd, env={**environ, **(env or {})},
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"bench: {' '.join(cmd)} (in {cwd}) failed: {err.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024


SYNTH_FLAGS = ["-O"]
"""Interpreter flags `make synth` runs main.py with (the Makefile's SYNTH); the floor runs with them too."""


def floor_command() -> list[str]:
    """Import cdktn and exactly the provider submodules the app imports, and nothing else, on the jsii
    runtime main.py sets up (dataplatform.jsii_channel: the kernel without its relay process)."""
    probe = subprocess.run([PY, "-c", "import sys, main, dataplatform.stacks.bootstrap, dataplatform.stacks.platform, "
                            "dataplatform.guardrails; print(' '.join(sorted(m for m in sys.modules "
                            "if m.startswith('cdktn_provider_google.') and m.count('.') == 1)))"],
                           cwd=REPO, capture_output=True, text=True, check=True)
    return [PY, *SYNTH_FLAGS, "-c", "import importlib\nfrom dataplatform import jsii_channel\njsii_channel.install()  # as main.py\n"
            "import cdktn\nfor m in %r.split(): importlib.import_module(m)" % probe.stdout.strip()]


def environments(tmp: Path, envs: int, pipelines: int) -> Path:
    """A directory of `envs` copies of dev.yaml, each with `pipelines` pipelines."""
    base = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    template = base["pipelines"][0]
    out = Path(tempfile.mkdtemp(dir=tmp))
    for i in range(envs):
        name = "dev" if envs == 1 else f"e{i}"
        data = {**base, "name": name, "project_id": f"acme-bench-{i:03d}", "project_number": f"{100000000000 + i}",
                "network": {**base["network"], "subnet_cidr": f"10.{i % 250}.0.0/20"},
                "pipelines": [{**template, "name": f"p{j}"} for j in range(pipelines)]}
        if base.get("ml"):  # the template's models follow its pipeline, renamed p0
            data["ml"] = {**base["ml"], "models": [{**m, "pipeline": "p0"} for m in base["ml"]["models"]]}
        (out / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return out


def measure(label: str, cmd: list[str], runs: int, env: dict[str, str] | None = None) -> dict:
    return summarize(label, [run(cmd, env) for _ in range(runs)])


def summarize(label: str, samples: list[tuple[float, int]]) -> dict:
    runs = len(samples)
    times = [t for t, _ in samples]
    row = {"case": label, "runs": runs, "median_s": round(statistics.median(times), 3),
           "min_s": round(min(times), 3), "max_s": round(max(times), 3), "peak_rss_mib": max(m for _, m in samples)}
    print(f"  {label:<28} {row['median_s']:>7.2f} s  ({row['min_s']:.2f}-{row['max_s']:.2f})  {row['peak_rss_mib']} MiB", flush=True)
    return row


def clean_environment() -> dict[str, str]:
    """This process's environment without what points into this checkout (a fresh clone brings its own)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CDKTF_OUTDIR", "ENVIRONMENTS_DIR", "DP_ENVIRONMENTS", "VIRTUAL_ENV",
                                                             "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO)))
    return env


def size_mib(path: Path) -> int:
    """Apparent size of a directory tree (hard links into the package caches counted in full)."""
    out = subprocess.run(["du", "-s", "--apparent-size", "--block-size=1M", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout else 0


def cold_start(tmp: Path, runs: int) -> dict:
    """`make synth` in `runs` fresh clones and `make test` in one, with the package caches as they are."""
    env = clean_environment()

    def clone(name: str) -> Path:
        target = tmp / name
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
        return target

    samples = []
    for i in range(runs):
        tree = clone(f"cold-synth-{i}")
        samples.append(run(MAKE + ["synth"], cwd=tree, base=env))
        shutil.rmtree(tree)
    result = {"synth": summarize("cold make synth (fresh clone)", samples)}
    tree = clone("cold-test")
    result["test"] = summarize("cold make test (fresh clone)", [run(MAKE + ["test"], cwd=tree, base=env)])
    result["sizes_mib"] = {name: size_mib(tree / name) for name in ENVIRONMENT_DIRS}
    print("  sizes (MiB): " + ", ".join(f"{k} {v}" for k, v in result["sizes_mib"].items()), flush=True)
    shutil.rmtree(tree)
    return result


def slope(points: list[tuple[int, float]]) -> float:
    xs, ys = zip(*points)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, xlabel in ((left, "pipelines", "pipelines in one environment"), (right, "environments", "environments")):
        rows = result[key]
        xs = [r["n"] for r in rows]
        ax.errorbar(xs, [r["median_s"] for r in rows], yerr=[[r["median_s"] - r["min_s"] for r in rows], [r["max_s"] - r["median_s"] for r in rows]],
                    marker="o", capsize=3, label="synth (median, min-max)")
        ax.axhline(result["floor"]["median_s"], color="grey", linestyle="--", label="provider import floor")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("cdktn synth time growth (2 cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "cdktf.out" / "bench"))
    parser.add_argument("--pipelines", default="1,10,50,200")
    parser.add_argument("--environments", default="1,5,20")
    parser.add_argument("--skip-tests", action="store_true", help="do not time the test suite")
    parser.add_argument("--skip-cold", action="store_true", help="do not time fresh clones")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh clones for the cold make synth")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
        tmp = Path(tmp_name)

        def synth(label: str, envs: int | None = None, pipelines: int = 1) -> dict:
            env = {"CDKTF_OUTDIR": str(tmp / "out")}
            if envs is not None:  # generated environments; None = the repository's own
                env["ENVIRONMENTS_DIR"] = str(environments(tmp, envs, pipelines))
            return measure(label, [PY, *SYNTH_FLAGS, "main.py"], args.runs, env)

        print("bench:", flush=True)
        # Interleaved (floor, synth, floor, synth, ...): on a shared machine, load drifts; pairs see the same.
        floor_cmd, synth_env = floor_command(), {"CDKTF_OUTDIR": str(tmp / "out")}
        run(floor_cmd), run(MAKE + ["synth"], synth_env)  # warm-up: bytecode caches written, files in the page cache
        pairs = [(run(floor_cmd), run(MAKE + ["synth"], synth_env)) for _ in range(args.runs)]
        result["floor"] = summarize("provider import (floor)", [a for a, _ in pairs])
        result["synth_all"] = summarize("make synth (all envs)", [b for _, b in pairs])
        result["main_py"] = synth(f"{' '.join(['python', *SYNTH_FLAGS, 'main.py'])} (all envs)")
        result["pipelines"] = [{"n": n, **synth(f"1 env, {n} pipelines", 1, n)} for n in map(int, args.pipelines.split(","))]
        result["environments"] = [{"n": n, **synth(f"{n} envs, 1 pipeline", n)} for n in map(int, args.environments.split(","))]
        if not args.skip_tests:
            result["test_suite"] = measure("test suite (pytest)", [PY, "-m", "pytest", "-q", "-x", "-p", "no:randomly"], 1)
        if not args.skip_cold:
            result["cold"] = cold_start(tmp, args.cold_runs)
    result["derived"] = {
        "synth_over_floor": round(result["synth_all"]["median_s"] / result["floor"]["median_s"], 2),
        "synth_over_floor_min": round(result["synth_all"]["min_s"] / result["floor"]["min_s"], 2),
        "per_pipeline_s": round(slope([(r["n"], r["median_s"]) for r in result["pipelines"]]), 4),
        "per_environment_s": round(slope([(r["n"], r["median_s"]) for r in result["environments"]]), 3),
    }
    if "test_suite" in result:
        result["derived"]["test_suite_s"] = result["test_suite"]["median_s"]
    if "cold" in result:
        result["derived"]["cold_synth_s"] = result["cold"]["synth"]["median_s"]
        result["derived"]["cold_test_s"] = result["cold"]["test"]["median_s"]
    result["verdict"] = {k: result["derived"][k] <= v for k, v in TARGETS.items() if k in result["derived"]}
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "growth.png")
    print("\n| measure | value | target | ok |\n|---|---|---|---|")
    for key, target in TARGETS.items():
        if key in result["derived"]:
            print(f"| {key} | {result['derived'][key]} | <= {target} | {'yes' if result['verdict'][key] else 'NO'} |")
    print(f"\nwrote {out / 'bench.json'} and {out / 'growth.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
