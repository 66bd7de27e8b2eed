"""`make etl-bench`: the workload figures (bursts, drain, validation, history), measured on this machine.

    python -m workloads.bench [--out DIR] [--quick]

Each case runs in its own child process (so its peak memory is its own) and prints one JSON
object; the parent prints a table and writes ``<out>/etl-bench.json``:

* burst: N files land at once for one pipeline (10 concurrent function instances, the launcher
  under functions-framework, Dataflow and Cloud Tasks simulated with their documented
  semantics): launches, follow-up tasks, most jobs of the pipeline at once, files left behind.
* drain: a backlog of files with a per-run bound, the real pipeline on DirectRunner against the
  local stand-ins: runs to drain, load jobs per run, seconds.
* validation: rows per CPU-second for 100k rows, per-row reference validator (what every run did
  before) vs the vectorised one, same file, same process.
* history: one run (10 new files) with 100k files landed before: the previous code (the last
  commit before the change, from git) with its layout (history in the landing folder and the
  checkpoint) vs the current code (history archived out of the landing folder).

Only public tools: the workloads' own dependencies, git, and the standard library.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "48fc8da"  # the last commit before the bounded-runs / one-job-per-pipeline change
CASES = ("burst", "drain", "validation", "history")


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------------------ burst


def case_burst(files: int, instances: int = 10) -> dict:
    import threading

    import functions_framework

    from workloads.tests.emulators.control_plane import CloudTasksSim, ControlPlaneAdapter, DataflowSim, session_for

    params = {"pipeline": "orders", "landing_prefix": "gs://landing/orders/", "schema": "[]", "output_table": "p:d.orders",
              "curated_prefix": "gs://c/orders/", "quarantine_prefix": "gs://q/orders/", "checkpoint_uri": "gs://k/orders.json"}
    os.environ.update(PROJECT_ID="proj", REGION="europe-west1", TEMPLATE_SPEC_URI="gs://a/t.json", MAX_ACTIVE_JOBS="15",
                      FOLLOWUP_QUEUE="projects/proj/locations/europe-west1/queues/q",
                      PIPELINES_JSON=json.dumps({"orders": {"parameters": params, "environment": {"maxWorkers": 2}, "on_arrival": True}}))
    app = functions_framework.create_app(target="launch", source=str(REPO / "workloads/launcher/main.py"), signature_type="cloudevent")
    import main

    dataflow, tasks = DataflowSim(), CloudTasksSim()
    adapter = ControlPlaneAdapter(dataflow, tasks)
    main.session = lambda: session_for(adapter)
    landed: dict[str, dt.datetime] = {}

    def land(client, name):
        landed[name] = dt.datetime.now(dt.timezone.utc)
        headers = {"ce-id": name, "ce-specversion": "1.0", "ce-source": "//storage.googleapis.com/projects/_/buckets/landing",
                   "ce-type": "google.cloud.storage.object.v1.finalized", "ce-subject": f"objects/{name}",
                   "ce-time": landed[name].isoformat(), "Content-Type": "application/json"}
        return client.post("/", headers=headers, data=json.dumps({"bucket": "landing", "name": name})).status_code

    names = [f"orders/2026/01/01/part-{i:05d}.parquet" for i in range(files)]
    started = time.perf_counter()
    failures = []

    def instance(chunk):
        client = app.test_client()
        failures.extend(n for n in chunk if land(client, n) != 200)

    threads = [threading.Thread(target=instance, args=(names[i::instances],)) for i in range(instances)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    burst_s = time.perf_counter() - started

    def deliver(body, headers):
        return app.test_client().post("/", headers=headers, data=body).status_code

    # The jobs run to the end (listing when they start); the queue retries its follow-up meanwhile.
    for _ in range(100):
        for job in dataflow.active():
            dataflow.start(job)
        if tasks.dispatch(deliver) == 0 and not dataflow.active() and not tasks.tasks:
            break
        for job in dataflow.active():
            dataflow.finish(job)
    listings = [j.listed_at for j in dataflow.launched() if j.listed_at]
    uncovered = [n for n, at in landed.items() if not any(listed >= at for listed in listings)]
    return {"files": files, "instances": instances, "launches": len(dataflow.launched()),
            "launch_requests": dataflow.launch_calls, "follow_up_tasks": len(tasks.created),
            "max_jobs_of_the_pipeline_at_once": max(dataflow.max_active_per_name.values() or [0]),
            "files_left_behind": len(uncovered), "failed_invocations": len(failures),
            "burst_seconds": round(burst_s, 2), "peak_mib": peak_mib()}


# ------------------------------------------------------------------------------ drain


def _rows(first: int, count: int) -> list[dict]:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    return [{"id": i, "name": f"n{i}", "score": float(i % 100), "seen_at": t0 + dt.timedelta(seconds=i)}
            for i in range(first, first + count)]


SCHEMA = [{"name": "id", "type": "INTEGER", "mode": "REQUIRED", "min": 1}, {"name": "name", "type": "STRING", "mode": "REQUIRED"},
          {"name": "score", "type": "FLOAT", "mode": "NULLABLE", "min": 0, "max": 100},
          {"name": "seen_at", "type": "TIMESTAMP", "mode": "NULLABLE"}]


def _args(root: Path, **extra: str) -> list[str]:
    values = {"runner": "DirectRunner", "pipeline": "orders", "landing_prefix": f"{root}/landing/orders/",
              "schema": json.dumps(SCHEMA), "output_table": f"{root}/bq/orders", "curated_prefix": f"{root}/curated/orders/",
              "quarantine_prefix": f"{root}/quarantine/orders/", "checkpoint_uri": f"{root}/control/orders.json",
              "run_log": f"{root}/logs/runs.jsonl", **extra}
    return [f"--{k}={v}" for k, v in values.items()]


def _write_files(landing: Path, files: int, rows: int = 20) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    landing.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        pq.write_table(pa.Table.from_pylist(_rows(1 + i * rows, rows)), landing / f"f{i:05d}.parquet")


def case_drain(files: int, per_run: int) -> dict:
    import logging

    logging.disable(logging.WARNING)
    from workloads.etl.pipeline import run
    from workloads.etl.reporting import read_run_log
    from workloads.etl.table import LocalJsonlTable

    root = Path(tempfile.mkdtemp(prefix="etl-bench-drain-"))
    try:
        _write_files(root / "landing" / "orders", files)
        args = _args(root, archive_prefix=f"{root}/archive/orders/", max_files_per_run=str(per_run),
                     followup_outbox=str(root / "followups"))
        started, runs = time.perf_counter(), 0
        while True:
            run(args)
            runs += 1
            summary = read_run_log(f"{root}/logs/runs.jsonl")[-1]
            if summary["backlog_files"] == 0 or runs > 100:
                break
        elapsed = time.perf_counter() - started
        jobs = LocalJsonlTable(f"{root}/bq/orders").load_jobs()
        loaded = sum(s["loaded_files"] for s in read_run_log(f"{root}/logs/runs.jsonl"))
        return {"files": files, "max_files_per_run": per_run, "runs_to_drain": runs, "load_jobs": len(jobs),
                "load_jobs_per_run": round(len(jobs) / runs, 2), "files_loaded": loaded,
                "files_left_in_landing": len(list((root / "landing" / "orders").glob("*.parquet"))),
                "seconds": round(elapsed, 1), "peak_mib": peak_mib()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------ validation


def case_validation(rows: int = 100_000, repeats: int = 3) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from workloads.etl import demo
    from workloads.etl.pipeline import split_file
    from workloads.etl.schema import parse_schema

    rng = random.Random(1)
    data = [demo._good_row(rng, i + 1) for i in range(rows)]
    for i in range(0, rows, 97):  # ~1 % invalid rows, every kind of rule broken
        demo._BREAKERS[i % len(demo._BREAKERS)][1](data[i])
    arrow = pa.schema([("order_id", pa.int64()), ("customer", pa.string()), ("amount", pa.decimal128(18, 10)),
                       ("quantity", pa.int64()), ("discount", pa.float64()), ("paid", pa.bool_()),
                       ("ordered_at", pa.timestamp("us", tz="UTC")), ("ship_date", pa.date32())])
    work = Path(tempfile.mkdtemp(prefix="etl-bench-validate-"))
    try:
        source = work / "source.parquet"
        pq.write_table(pa.Table.from_pylist(data, schema=arrow), source)
        fields = parse_schema(demo.SCHEMA)
        result = {"rows": rows, "columns": len(fields)}
        quarantine = {}
        for label, vectorized in (("before_per_row", False), ("after_vectorised", True)):
            best = None
            for _ in range(repeats):
                cpu = time.process_time()
                split = split_file(str(source), fields, str(work / f"{label}.parquet"), str(work / f"{label}.jsonl"),
                                   "gs://landing/orders/source.parquet", 1, vectorized=vectorized)
                spent = time.process_time() - cpu
                best = spent if best is None else min(best, spent)
            quarantine[label] = (work / f"{label}.jsonl").read_text()
            result[f"{label}_rows_per_cpu_second"] = round(rows / best)
            result[f"{label}_quarantined_rows"] = split.quarantined_rows
        same_curated = pq.read_table(work / "before_per_row.parquet").equals(pq.read_table(work / "after_vectorised.parquet"))
        result["same_output"] = same_curated and quarantine["before_per_row"] == quarantine["after_vectorised"]
        result["speedup"] = round(result["after_vectorised_rows_per_cpu_second"] / result["before_per_row_rows_per_cpu_second"], 1)
        result["peak_mib"] = peak_mib()
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------ history


def _history(files: int, where: Path) -> dict:
    """``files`` tiny objects under ``where``; returns v1 checkpoint entries for them."""
    entries = {}
    stamp = "2026-01-01T00:00:00+00:00"
    for d in range(0, files, 1000):
        folder = where / f"2025/{d // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(d, min(files, d + 1000)):
            path = folder / f"h{i:06d}.parquet"
            path.write_bytes(b"x")
            entries[str(path)] = {"generation": str(path.stat().st_mtime_ns), "valid_rows": 1, "quarantined_rows": 0,
                                  "committed_at": stamp}
    return entries


def case_history(history: int, layout: str) -> dict:
    """One run with 10 new files after ``history`` files; ``layout`` before (old code) or after."""
    root = Path(tempfile.mkdtemp(prefix=f"etl-bench-history-{layout}-"))
    try:
        landing = root / "landing" / "orders"
        if layout == "before":
            entries = _history(history, landing)  # the old layout: everything stays in landing
            (root / "control").mkdir(parents=True)
            (root / "control" / "orders.json").write_text(json.dumps({"version": 1, "pipeline": "orders", "files": entries}))
            code = root / "before"
            code.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE_COMMIT, "workloads"], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
            pythonpath = str(code)
            args = _args(root)
        else:
            _history(history, root / "landing" / "_archive" / "orders")  # archived by earlier runs
            pythonpath = str(REPO)
            args = _args(root, archive_prefix=f"{root}/landing/_archive/orders/")
        _write_files(landing, 10)
        state_bytes_before = (root / "control" / "orders.json").stat().st_size if (root / "control" / "orders.json").exists() else 0
        script = ("import sys, time, resource, logging; logging.disable(logging.WARNING)\n"
                  "from workloads.etl.pipeline import run\n"
                  "t = time.perf_counter(); run(sys.argv[1:]); print(round(time.perf_counter() - t, 2), "
                  "round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))")
        out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": pythonpath}, check=True)
        seconds, peak = out.stdout.split()[-2:]
        summary = json.loads((root / "logs" / "runs.jsonl").read_text().splitlines()[-1])
        return {"layout": layout, "historical_files": history, "new_files": 10, "processed_files": summary["processed_files"],
                "run_seconds": float(seconds), "state_bytes_before_run": state_bytes_before,
                "state_bytes_after_run": (root / "control" / "orders.json").stat().st_size, "peak_mib": float(peak)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------ driver


def child(case: str, quick: bool) -> dict:
    if case == "burst":
        burst_500 = case_burst(500)
        return {"burst_500": burst_500, "burst_5000": burst_500 if quick else case_burst(5000)}  # quick: no second burst
    if case == "drain":
        return case_drain(200 if quick else 1000, 50 if quick else 250)
    if case == "validation":
        return case_validation(20_000 if quick else 100_000)
    if case == "history":
        n = 5_000 if quick else 100_000
        return {"before": case_history(n, "before"), "after": case_history(n, "after")}
    raise ValueError(case)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "cdktf.out" / "etl-bench"))
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test of the bench itself)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(child(args.case, args.quick)))
        return 0
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "quick": args.quick}
    for case in CASES:
        out = subprocess.run([sys.executable, "-m", "workloads.bench", "--case", case, *(["--quick"] if args.quick else [])],
                             capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        if out.returncode:
            raise SystemExit(f"bench case {case} failed:\n{out.stderr[-3000:]}")
        results[case] = json.loads(out.stdout.strip().splitlines()[-1])
    report(results)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "etl-bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {Path(args.out) / 'etl-bench.json'}")
    return 0


def report(r: dict) -> None:
    b5, b50, d, v, h = r["burst"]["burst_500"], r["burst"]["burst_5000"], r["drain"], r["validation"], r["history"]
    rows = [
        ("launches per 500-file burst (10 instances)", f"{b5['launches']} (follow-up tasks {b5['follow_up_tasks']}, "
         f"max {b5['max_jobs_of_the_pipeline_at_once']} job at once, {b5['files_left_behind']} files left)", "<= 2"),
        (f"launches per {b50['files']}-file burst", f"{b50['launches']} ({b50['files_left_behind']} files left)", "<= 2"),
        (f"runs to drain {d['files']} files at {d['max_files_per_run']} per run", f"{d['runs_to_drain']} ({d['seconds']} s)",
         f"{-(-d['files'] // d['max_files_per_run'])}"),
        ("load jobs per run", f"{d['load_jobs_per_run']}", "1"),
        (f"validation rows/s per core, {v['rows']} rows: before -> after",
         f"{v['before_per_row_rows_per_cpu_second']:,} -> {v['after_vectorised_rows_per_cpu_second']:,} "
         f"(x{v['speedup']}, same output: {v['same_output']})", ">= x5"),
        (f"one run with {h['after']['historical_files']:,} historical files: before -> after",
         f"{h['before']['run_seconds']} s -> {h['after']['run_seconds']} s "
         f"(state {h['before']['state_bytes_after_run']:,} B -> {h['after']['state_bytes_after_run']:,} B)", "flat"),
        ("peak memory (MiB): burst, drain, validation, history before/after",
         f"{b50['peak_mib']}, {d['peak_mib']}, {v['peak_mib']}, {h['before']['peak_mib']}/{h['after']['peak_mib']}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  value  [target]")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value}" + (f"  [{target}]" if target else ""))


if __name__ == "__main__":
    sys.exit(main())
