"""`make bench`: synth and test timings against the provider-import floor, as a table + JSON + PNG.

Each case runs in a fresh process (as `make synth` does), several times; the table shows
the median and the spread (min-max). Per-pipeline and per-environment costs are the slopes
of a least-squares line through the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
TARGETS = {"synth_over_floor": 1.5, "per_pipeline_s": 0.050, "per_environment_s": 0.5, "test_suite_s": 90.0}


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS in MiB of the process tree it waited for)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024


def floor_command() -> list[str]:
    """Import cdktn and exactly the provider submodules the app imports, and nothing else."""
    probe = subprocess.run([PY, "-c", "import main, sys; print(' '.join(sorted(m for m in sys.modules "
                            "if m.startswith('cdktn_provider_google.') and m.count('.') == 1)))"],
                           cwd=REPO, capture_output=True, text=True, check=True)
    return [PY, "-c", "import importlib, cdktn\nfor m in %r.split(): importlib.import_module(m)" % probe.stdout.strip()]


def environments(tmp: Path, envs: int, pipelines: int) -> Path:
    """A directory of `envs` copies of dev.yaml, each with `pipelines` pipelines."""
    base = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    template = base["pipelines"][0]
    out = Path(tempfile.mkdtemp(dir=tmp))
    for i in range(envs):
        name = "dev" if envs == 1 else f"e{i}"
        data = {**base, "name": name, "project_id": f"acme-bench-{i:03d}",
                "network": {**base["network"], "subnet_cidr": f"10.{i % 250}.0.0/20"},
                "pipelines": [{**template, "name": f"p{j}"} for j in range(pipelines)]}
        if base.get("ml"):  # the template's models follow its pipeline, renamed p0
            data["ml"] = {**base["ml"], "models": [{**m, "pipeline": "p0"} for m in base["ml"]["models"]]}
        (out / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return out


def measure(label: str, cmd: list[str], runs: int, env: dict[str, str] | None = None) -> dict:
    samples = [run(cmd, env) for _ in range(runs)]
    times = [t for t, _ in samples]
    row = {"case": label, "runs": runs, "median_s": round(statistics.median(times), 3),
           "min_s": round(min(times), 3), "max_s": round(max(times), 3), "peak_rss_mib": max(m for _, m in samples)}
    print(f"  {label:<28} {row['median_s']:>7.2f} s  ({row['min_s']:.2f}-{row['max_s']:.2f})  {row['peak_rss_mib']} MiB", flush=True)
    return row


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
            return measure(label, [PY, "main.py"], args.runs, env)

        print("bench:", flush=True)
        result["floor"] = measure("provider import (floor)", floor_command(), args.runs)
        result["synth_all"] = synth("make synth (all envs)")
        result["pipelines"] = [{"n": n, **synth(f"1 env, {n} pipelines", 1, n)} for n in map(int, args.pipelines.split(","))]
        result["environments"] = [{"n": n, **synth(f"{n} envs, 1 pipeline", n)} for n in map(int, args.environments.split(","))]
        if not args.skip_tests:
            result["test_suite"] = measure("test suite (pytest)", [PY, "-m", "pytest", "-q", "-x", "-p", "no:randomly"], 1)
    result["derived"] = {
        "synth_over_floor": round(result["synth_all"]["median_s"] / result["floor"]["median_s"], 2),
        "per_pipeline_s": round(slope([(r["n"], r["median_s"]) for r in result["pipelines"]]), 4),
        "per_environment_s": round(slope([(r["n"], r["median_s"]) for r in result["environments"]]), 3),
    }
    if "test_suite" in result:
        result["derived"]["test_suite_s"] = result["test_suite"]["median_s"]
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
