"""`make mutation`: mutation score per module, with cosmic-ray's mutants and targeted tests.

    python -m dataplatform.tools.mutation [--module PATH ...] [--survivors] [--hand] [--jobs N]

tests/mutation.toml lists the groups (a venv, the test files, the modules they guard) and the
equivalent mutants, each with a reason. For each group the tool:

1. runs the group's tests once under a line tracer (dataplatform/tools/mutation_trace.py),
   leaving out the tests that synthesize the whole app (fixture `synth_dir`): which test
   executes which line, how long each takes;
2. enumerates the mutants of each module with cosmic-ray (`cosmic_ray.commands.init`) and keeps
   the operators listed in tests/mutation.toml (`operators`, see there why);
3. runs each mutant (cosmic-ray writes it into a scratch copy of the repository, one copy per
   job) against only the tests that executed the mutated statement, fastest first, stopping
   at the first failure. A mutant in module-level code (a constant, a `Field(le=50)`, a
   decorator) runs the whole group. A failing or timed-out run kills the mutant; a mutant no
   test executes survives without a run.

Prints killed / survived / equivalent per module and writes cdktf.out/mutation/mutation.json
(every survivor with its line and diff). `--survivors` re-runs only the previous run's
survivors (for iterating on tests); the score in the README comes from a full run.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import difflib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.tools.mutation_trace import IMPORT  # the trace's context of lines run while no test runs

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "tests" / "mutation.toml"
OUT = REPO / "cdktf.out" / "mutation"
# Files the scratch copies need besides the tracked ones (the venvs are used in place).
LINKED = ("node_modules",)


@dataclass(frozen=True)
class Group:
    name: str
    python: str
    tests: tuple[str, ...]
    modules: tuple[str, ...]
    skip_fixtures: tuple[str, ...] = ()
    exclude_tests: tuple[str, ...] = ()
    max_test_seconds: float = 0.0
    preload: tuple[str, ...] = ()


@dataclass(frozen=True)
class Equivalent:
    module: str
    line: str
    operator: str
    reason: str
    mutated: tuple[str, ...] = ()
    """When a line has several mutants of one operator: text the mutated line contains (any of)."""


@dataclass(frozen=True)
class HandMutant:
    """A named bug applied by hand (each `old` -> its `new`, exactly one occurrence) and the test that must fail."""

    name: str
    file: str
    old: tuple[str, ...]
    new: tuple[str, ...]
    test: str
    python: str = ".venv/bin/python"

    def line(self, text: str) -> int:
        return text[: text.index(self.old[0])].count("\n") + 1


@dataclass
class Mutant:
    module: str
    operator: str
    occurrence: int
    line: int
    column: int
    source_line: str
    diff: str = ""
    status: str = "pending"  # killed | survived | equivalent | no-tests
    tests_run: int = 0
    seconds: float = 0.0
    reason: str = ""
    killed_by: str = ""

    @property
    def id(self) -> str:
        return f"{self.module}:{self.line}:{self.column}:{self.operator}"


@dataclass
class Config:
    operators: list[str]
    groups: list[Group]
    equivalents: list[Equivalent]
    hand_mutants: list[HandMutant] = field(default_factory=list)
    timeout_factor: float = 3.0
    timeout_floor: float = 30.0


def _as_tuple(value) -> tuple:
    """A TOML value that is one string or a list of them, as a tuple."""
    return tuple(value) if isinstance(value, list) else (value,)


def load_config(path: Path = CONFIG) -> Config:
    raw = tomllib.loads(path.read_text())
    groups = [Group(name=g["name"], python=g["python"], tests=tuple(g["tests"]), modules=tuple(g["modules"]),
                    skip_fixtures=tuple(g.get("skip_fixtures", ())), exclude_tests=tuple(g.get("exclude_tests", ())),
                    max_test_seconds=float(g.get("max_test_seconds", 0.0)), preload=tuple(g.get("preload", ())))
              for g in raw["group"]]
    equivalents = [Equivalent(e["module"], e["line"].strip(), e["operator"], e["reason"], _as_tuple(e["mutated"]) if "mutated" in e else ())
                   for e in raw.get("equivalent", [])]
    for e in equivalents:
        if not e.reason.strip():
            raise SystemExit(f"tests/mutation.toml: equivalent {e.module} {e.line!r} has no reason")
    hand = [HandMutant(**(h | {"old": _as_tuple(h["old"]), "new": _as_tuple(h["new"])})) for h in raw.get("hand_mutant", [])]
    return Config(operators=raw["operators"], groups=groups, equivalents=equivalents, hand_mutants=hand,
                  timeout_factor=raw.get("timeout_factor", 3.0), timeout_floor=raw.get("timeout_floor", 30.0))


# ---------------------------------------------------------------- mutants


def enumerate_mutants(module: str, operators: list[str]) -> list[Mutant]:
    """Every cosmic-ray mutant of `module` whose operator matches one of `operators` (regexes)."""
    import cosmic_ray.plugins
    from cosmic_ray.commands.init import _all_work_items  # the enumeration `cosmic-ray init` stores

    keep = re.compile("|".join(f"(?:{o})" for o in operators))
    lines = (REPO / module).read_text().splitlines()
    mutants = []
    names = set(cosmic_ray.plugins.operator_names())
    for item in _all_work_items([Path(module)], {}):
        spec = item.mutations[0]
        if spec.operator_name not in names or not keep.fullmatch(spec.operator_name):
            continue
        line, column = spec.start_pos
        mutants.append(Mutant(module, spec.operator_name, spec.occurrence, line, column, lines[line - 1].strip()))
    return mutants


def mutate(source: str, mutant: Mutant) -> str | None:
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    return mutate_code(source, cosmic_ray.plugins.get_operator(mutant.operator)(), mutant.occurrence)


def statement_spans(source: str) -> dict[int, tuple[int, int]]:
    """line -> (first, last) line of the innermost statement (a compound statement's header only)."""
    spans: dict[int, tuple[int, int]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt):
            continue
        body = getattr(node, "body", None)
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        last = (body[0].lineno - 1) if isinstance(body, list) and body and isinstance(body[0], ast.stmt) else node.end_lineno
        last = max(first, last or first)
        for n in range(first, last + 1):
            if n not in spans or (last - first) < (spans[n][1] - spans[n][0]):
                spans[n] = (first, last)
    return spans


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of function argument/return annotations and dataclass field
    annotations, which are never evaluated in a module with `from __future__ import annotations`:
    mutants there are equivalent (pydantic models do evaluate theirs: those stay)."""
    tree = ast.parse(source)
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
                 for n in tree.body)
    if not future:
        return []
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(_is_dataclass(d) for d in node.decorator_list):
            # a dataclass reads its field annotations as text only (ClassVar/InitVar), never evaluates them
            spans += [((n.annotation.lineno, n.annotation.col_offset), (n.annotation.end_lineno, n.annotation.end_col_offset))
                      for n in node.body if isinstance(n, ast.AnnAssign)]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            annotated = [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg)
                         if a is not None and a.annotation is not None]
            if node.returns is not None:
                annotated.append(node.returns)
            spans += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in annotated]
    return spans


def _mutated_line(source: str, m: Mutant) -> str:
    mutated = mutate(source, m) or source
    return mutated.splitlines()[m.line - 1]


def _is_dataclass(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (isinstance(target, ast.Attribute) and target.attr == "dataclass")


def match_equivalents(mutants: list[Mutant], equivalents: list[Equivalent], sources: dict[str, str]) -> list[Equivalent]:
    """Mark the listed equivalents (module, source line, operator); return the entries that matched nothing."""
    used: set[int] = set()
    by_module: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    for m in mutants:
        if m.module not in by_module:
            by_module[m.module] = annotation_spans(sources[m.module])
        if any(start <= (m.line, m.column) < end for start, end in by_module[m.module]):
            m.status, m.reason = "equivalent", "annotation never evaluated (from __future__ import annotations)"
            continue
        for i, e in enumerate(equivalents):
            if e.module == m.module and e.line == m.source_line and fnmatch.fnmatchcase(m.operator, e.operator):
                if e.mutated and not any(text in _mutated_line(sources[m.module], m) for text in e.mutated):
                    continue
                m.status, m.reason = "equivalent", e.reason
                used.add(i)
                break
    return [e for i, e in enumerate(equivalents) if i not in used and e.module in {m.module for m in mutants}]


# ---------------------------------------------------------------- running


def scratch_copy(name: str) -> Path:
    """A copy of the working tree (tracked and new files) where mutants are written."""
    dest = OUT / name
    if dest.exists():
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for file in filter(None, files):
        src = REPO / file
        if src.is_file():
            (dest / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / file)
    for linked in LINKED:
        if (REPO / linked).exists():
            (dest / linked).symlink_to(REPO / linked)
    return dest


def pytest_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant written within the same second must not reuse a stale .pyc
    env.pop("DP_ENVIRONMENTS", None)
    return env


def trace(group: Group, copy: Path) -> dict:
    """Run the group's tests once under the tracer; the map of line -> tests and test durations."""
    out = OUT / f"trace-{group.name}.json"
    env = pytest_env() | {
        "MUTATION_TRACE_FILES": os.pathsep.join(str((copy / m).resolve()) for m in group.modules),
        "MUTATION_TRACE_OUT": str(out),
        "MUTATION_SKIP_FIXTURES": ",".join(group.skip_fixtures),
    }
    cmd = [str(REPO / group.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "dataplatform.tools.mutation_trace",
           *group.tests]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not out.exists():
        raise SystemExit(f"mutation: the traced run of group {group.name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    data = json.loads(out.read_text())
    failed = [t for t, info in data["tests"].items() if not info["passed"]]
    if failed:
        print(f"  {group.name}: {len(failed)} test(s) fail without a mutant, left out: {failed[:5]}", file=sys.stderr)
    data["lines"] = {str(Path(f).resolve().relative_to(copy.resolve())): {int(k): v for k, v in lines.items()}
                     for f, lines in data["lines"].items()}
    slow = len(data["tests"]) - len(eligible_tests(group, data["tests"]))
    print(f"  {group.name}: traced {len(data['tests'])} tests in {time.perf_counter() - started:.0f} s"
          f" ({slow} left out: failing, excluded or over {group.max_test_seconds:g} s)", flush=True)
    return data


def eligible_tests(group: Group, tests: dict) -> set[str]:
    """The tests a mutant may run: passed without a mutant, not excluded, not slower than the group allows."""
    return {t for t, info in tests.items() if info["passed"]
            and not (group.max_test_seconds and info["seconds"] > group.max_test_seconds)
            and not any(fnmatch.fnmatchcase(t, p) for p in group.exclude_tests)}


def select_tests(group: Group, data: dict, mutant: Mutant, spans: dict[int, tuple[int, int]]) -> list[str]:
    tests = data["tests"]
    first, last = spans.get(mutant.line, (mutant.line, mutant.line))
    contexts: set[str] = set()
    for n in range(first, last + 1):
        contexts.update(data["lines"].get(mutant.module, {}).get(n, ()))
    eligible = eligible_tests(group, tests)
    chosen = eligible if IMPORT in contexts else (contexts & eligible)
    return sorted(chosen, key=lambda t: (tests[t]["seconds"], t))


class Worker:
    """A warm pytest in one scratch copy (dataplatform/tools/mutation_worker.py): one fork per run."""

    def __init__(self, group: Group, copy: Path):
        self.copy = copy
        self.output = copy / ".mutation-output.txt"
        self.proc = subprocess.Popen([str(REPO / group.python), "-m", "dataplatform.tools.mutation_worker", ",".join(group.preload)],
                                     cwd=copy, env=pytest_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, args: list[str], timeout: float) -> tuple[int, str]:
        assert self.proc.stdin and self.proc.stdout
        request = {"args": args, "timeout": timeout, "output": str(self.output), "tmp": str(self.copy / ".mutation-tmp")}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the mutation worker in {self.copy} stopped")
        return json.loads(answer)["code"], self.output.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run_mutant(cfg: Config, worker: Worker, source: str, mutant: Mutant, selected: list[str], durations: dict[str, float]) -> None:
    try:
        mutated = mutate(source, mutant)
    except Exception as exc:  # cosmic-ray cannot apply it (e.g. ExceptionReplacer on `except (a.B, C)`)
        mutant.status, mutant.reason = "error", f"cosmic-ray could not apply it: {type(exc).__name__}: {exc}"
        return
    if mutated is None:
        mutant.status, mutant.reason = "equivalent", "cosmic-ray made no change"
        return
    try:
        compile(mutated, mutant.module, "exec")
    except SyntaxError as exc:  # `{**a}` -> `{*a}`: the module no longer imports, every test of it fails
        mutant.status, mutant.killed_by = "killed", f"does not compile ({exc.msg})"
        return
    if not selected:
        mutant.status = "no-tests"
        return
    mutant.diff = "\n".join(line for line in difflib.unified_diff(source.splitlines(), mutated.splitlines(), lineterm="", n=0)
                            if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    path = worker.copy / mutant.module
    timeout = cfg.timeout_floor + cfg.timeout_factor * sum(durations[t] for t in selected)
    options = ["-x", "-q", "-p", "no:cacheprovider", "--tb=line"]
    started = time.perf_counter()
    try:
        path.write_text(mutated)
        code, output = worker.run([*options, *selected], timeout)
        if code in (4, 5):  # a mutant renamed parametrized tests: run their files instead
            code, output = worker.run([*options, *sorted({t.split("::")[0] for t in selected})], timeout)
    finally:
        path.write_text(source)
    mutant.seconds = round(time.perf_counter() - started, 2)
    mutant.tests_run = len(selected)
    if code == 0:
        mutant.status = "survived"
    else:
        mutant.status = "killed"
        mutant.killed_by = "timeout" if code == -1 else _first_failure(output)


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ")[0]
    return "collection error" if "error" in output.lower() else "failed"


def run_hand_mutant(copy: Path, h: HandMutant) -> dict:
    """Apply one hand mutant in the scratch copy and run its named test: it must fail."""
    path = copy / h.file
    source = path.read_text()
    for old in h.old:
        if source.count(old) != 1:
            return {"name": h.name, "file": h.file, "line": None, "test": h.test, "status": "stale",
                    "detail": f"{old!r} occurs {source.count(old)} times in {h.file}"}
    line = h.line(source)
    mutated = source
    for old, new in zip(h.old, h.new, strict=True):
        mutated = mutated.replace(old, new)
    started = time.perf_counter()
    try:
        path.write_text(mutated)
        proc = subprocess.run([str(REPO / h.python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--tb=line", h.test],
                              cwd=copy, env=pytest_env(), capture_output=True, text=True, timeout=600)
    finally:
        path.write_text(source)
    status = {0: "survived", 1: "killed"}.get(proc.returncode, f"error (pytest exit {proc.returncode})")
    return {"name": h.name, "file": h.file, "line": line, "test": h.test, "status": status,
            "seconds": round(time.perf_counter() - started, 1), "detail": _first_failure(proc.stdout) if status == "killed" else proc.stdout[-500:]}


def run_hand_mutants(cfg: Config, copies: list[Path]) -> list[dict]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
        free, lock = list(copies), threading.Lock()

        def one(h: HandMutant) -> dict:
            with lock:
                copy = free.pop()
            try:
                return run_hand_mutant(copy, h)
            finally:
                with lock:
                    free.append(copy)

        results = list(pool.map(one, cfg.hand_mutants))
    print(f"{'hand mutant':58s} {'file:line':44s} {'status':9s} test")
    for r in results:
        print(f"{r['name'][:58]:58s} {r['file'] + ':' + str(r['line']):44s} {r['status']:9s} {r['test']}")
    return results


# ---------------------------------------------------------------- report


def carry_over_kills(pending: list[Mutant], previous: dict) -> list[Mutant]:
    """`--survivors`: mark killed the mutants the previous run killed on the same source line, and
    return the rest to run (its survivors, and every mutant it did not run or whose line changed:
    another module, or edited code)."""
    killed = {(m["id"], m.get("source")) for m in previous.get("mutants", []) if m["status"] == "killed"}
    for mu in pending:
        if (mu.id, mu.source_line) in killed:
            mu.status, mu.killed_by = "killed", "previous run"
    return [mu for mu in pending if mu.status == "pending"]


def _as_json(m: Mutant) -> dict:
    return {"id": m.id, "status": m.status, "source": m.source_line, "diff": m.diff, "reason": m.reason,
            "killed_by": m.killed_by, "tests_run": m.tests_run, "seconds": m.seconds}


def summarize(mutants: list[Mutant]) -> dict[str, dict]:
    summary: dict[str, dict] = {}
    for m in mutants:
        s = summary.setdefault(m.module, {"killed": 0, "survived": 0, "no_tests": 0, "equivalent": 0, "error": 0})
        key = {"no-tests": "no_tests"}.get(m.status, m.status)
        s[key] += 1
    for s in summary.values():
        total = s["killed"] + s["survived"] + s["no_tests"]
        s["non_equivalent"] = total
        s["score"] = round(100 * s["killed"] / total, 1) if total else 100.0
    return summary


def print_table(summary: dict[str, dict], target: float) -> None:
    print(f"{'module':44s} {'killed':>7s} {'survived':>9s} {'no test':>8s} {'equiv':>6s} {'error':>6s} {'score':>7s}")
    for module, s in summary.items():
        flag = "" if s["score"] >= target else "  < target"
        print(f"{module:44s} {s['killed']:7d} {s['survived']:9d} {s['no_tests']:8d} {s['equivalent']:6d} {s['error']:6d} {s['score']:6.1f}%{flag}")


def markdown_table(summary: dict[str, dict]) -> str:
    """The README's score table (Tests, Mutation testing), one row per module."""
    rows = ["| module | killed / non-equivalent | score | survived | no test | equivalent |", "|---|---|---|---|---|---|"]
    rows += [f"| `{module}` | {s['killed']} / {s['non_equivalent']} | {s['score']:.1f} % | {s['survived']} | {s['no_tests']} | {s['equivalent']} |"
             for module, s in summary.items()]
    return "\n".join(rows) + "\n"


def hand_table(hand: list[dict]) -> str:
    """The README's table of named hand mutants: each with the test that must kill it, and whether it did."""
    rows = ["| hand mutant | where | killed by | status |", "|---|---|---|---|"]
    rows += [f"| {h['name']} | `{h['file']}:{h['line']}` | `{h['test']}` | {h['status']} |" for h in hand]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", action="append", default=[], help="only these modules (path or shell pattern)")
    parser.add_argument("--survivors", action="store_true", help="re-run only the previous run's survivors")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--target", type=float, default=85.0)
    parser.add_argument("--hand", action="store_true", help="only the hand mutants of tests/mutation.toml ([[hand_mutant]])")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output directory (default {OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    OUT = args.out.resolve()

    cfg = load_config()
    OUT.mkdir(parents=True, exist_ok=True)
    previous = json.loads((OUT / "mutation.json").read_text()) if (OUT / "mutation.json").exists() else {}
    wanted = lambda module: not args.module or any(fnmatch.fnmatchcase(module, p) for p in args.module)  # noqa: E731
    started = time.perf_counter()
    copies = [scratch_copy(f"{'hand' if args.hand else 'work'}-{i}") for i in range(args.jobs)]
    if args.hand:
        hand = run_hand_mutants(cfg, copies)
        (OUT / "hand-mutants.json").write_text(json.dumps(hand, indent=1) + "\n")
        return 0 if all(h["status"] == "killed" for h in hand) else 1
    results: list[Mutant] = []
    stale: list[Equivalent] = []
    for group in cfg.groups:
        modules = [m for m in group.modules if wanted(m)]
        if not modules:
            continue
        sources = {m: (REPO / m).read_text() for m in modules}
        mutants = [mu for m in modules for mu in enumerate_mutants(m, cfg.operators)]
        stale += match_equivalents(mutants, cfg.equivalents, sources)
        pending = [mu for mu in mutants if mu.status == "pending"]
        if args.survivors and previous:
            pending = carry_over_kills(pending, previous)
        print(f"group {group.name}: {len(mutants)} mutants in {len(modules)} module(s), {len(pending)} to run", flush=True)
        if pending:
            data = trace(group, copies[0])
            durations = {t: info["seconds"] for t, info in data["tests"].items()}
            spans = {m: statement_spans(sources[m]) for m in modules}
            workers = [Worker(group, copy) for copy in copies]
            free = list(workers)
            lock = threading.Lock()
            done = [0]

            def work(mu: Mutant) -> None:
                with lock:
                    worker = free.pop()
                try:
                    run_mutant(cfg, worker, sources[mu.module], mu, select_tests(group, data, mu, spans[mu.module]), durations)
                finally:
                    with lock:
                        free.append(worker)
                        done[0] += 1
                        if done[0] % 50 == 0:
                            print(f"  {done[0]}/{len(pending)} ({time.perf_counter() - started:.0f} s)", flush=True)
                            partial = {"partial": True, "mutants": [_as_json(m) for m in results + mutants if m.status != "pending"]}
                            (OUT / "mutation.partial.json").write_text(json.dumps(partial) + "\n")

            try:
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
                    list(pool.map(work, pending))
            finally:
                for w in workers:
                    w.close()
        results += mutants
        partial = {"partial": True, "modules": summarize(results), "mutants": [_as_json(m) for m in results]}
        (OUT / "mutation.partial.json").write_text(json.dumps(partial, indent=1) + "\n")

    hand = run_hand_mutants(cfg, copies) if not args.module and not args.survivors else []
    elapsed = time.perf_counter() - started
    summary = summarize(results)
    print_table(summary, args.target)
    report = {
        "tool": "cosmic-ray (mutants) + dataplatform/tools/mutation.py (targeted tests)",
        "operators": cfg.operators, "seconds": round(elapsed, 1), "target": args.target, "modules": summary,
        "hand_mutants": hand,
        "mutants": [_as_json(m) for m in results],
    }
    if args.module and previous:  # keep the other modules of the previous run
        kept = [m for m in previous.get("mutants", []) if not wanted(m["id"].split(":")[0])]
        report["mutants"] = kept + report["mutants"]
        report["modules"] = {k: v for k, v in previous.get("modules", {}).items() if not wanted(k)} | summary
    (OUT / "mutation.json").write_text(json.dumps(report, indent=1) + "\n")
    (OUT / "mutation.md").write_text(markdown_table(report["modules"]) + ("\n" + hand_table(hand) if hand else ""))
    print(f"{len(results)} mutants in {elapsed:.0f} s; survivors and diffs in {OUT / 'mutation.json'}, the README table in mutation.md")
    for e in stale:
        print(f"stale equivalent in tests/mutation.toml (matches no mutant): {e.module}: {e.line!r} {e.operator}")
    below = [m for m, s in summary.items() if s["score"] < args.target]
    return 1 if below or stale or any(h["status"] != "killed" for h in hand) else 0


if __name__ == "__main__":
    sys.exit(main())
