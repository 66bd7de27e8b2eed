"""pytest plugin for `make mutation`: which test executes which line of the mutated modules.

Loaded with `-p dataplatform.tools.mutation_trace` (standard library only, so the workloads'
venv loads it too). MUTATION_TRACE_FILES names the source files to watch (os.pathsep
separated, absolute), MUTATION_TRACE_OUT the JSON written at the end, and
MUTATION_SKIP_FIXTURES (comma separated) deselects the tests using those fixtures:

    {"lines": {file: {line: [nodeid | "<import>", ...]}},
     "tests": {nodeid: {"seconds": s, "passed": bool}}}

Lines run while no test runs (module bodies, class bodies, decorators, defaults) belong to
"<import>": a mutant there runs every test of its group. The tool runs each mutant against
only the tests that executed its statement (dataplatform/tools/mutation.py).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

IMPORT = "<import>"


class _Tracer:
    def __init__(self, files: set[str]):
        self.files = files
        self.context = IMPORT
        self.lines: dict[str, dict[int, set[str]]] = {f: {} for f in files}
        self._watched: dict[str, str | None] = {}  # co_filename -> watched real path, None if not watched

    def _watch(self, filename: str) -> str | None:
        if filename not in self._watched:
            real = os.path.realpath(filename)
            self._watched[filename] = real if real in self.files else None
        return self._watched[filename]

    def global_trace(self, frame, event, arg):
        real = self._watch(frame.f_code.co_filename)
        if real is None:
            return None
        self._hit(real, frame.f_lineno)
        return self.local_trace

    def local_trace(self, frame, event, arg):
        if event == "line":
            self._hit(self._watched[frame.f_code.co_filename], frame.f_lineno)
        return self.local_trace

    def _hit(self, filename: str, line: int) -> None:
        self.lines[filename].setdefault(line, set()).add(self.context)


_TRACER: _Tracer | None = None
_TESTS: dict[str, dict] = {}


def _start() -> None:
    """Trace from the moment pytest loads this plugin (-p), before any conftest.py imports the
    modules under test: their module-level lines count as run at import."""
    global _TRACER
    files = {os.path.realpath(f) for f in os.environ.get("MUTATION_TRACE_FILES", "").split(os.pathsep) if f}
    if not files or _TRACER is not None:
        return
    _TRACER = _Tracer(files)
    threading.settrace(_TRACER.global_trace)
    sys.settrace(_TRACER.global_trace)


_start()


def pytest_collection_modifyitems(session, config, items):
    """Deselect the tests that use a fixture named in MUTATION_SKIP_FIXTURES (the whole-app synth)."""
    skip = set(filter(None, os.environ.get("MUTATION_SKIP_FIXTURES", "").split(",")))
    if not skip:
        return
    keep = [item for item in items if not skip & set(getattr(item, "fixturenames", ()))]
    deselected = [item for item in items if item not in keep]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def pytest_runtest_protocol(item, nextitem):
    if _TRACER is not None:
        _TRACER.context = item.nodeid
        _TESTS[item.nodeid] = {"seconds": 0.0, "passed": True, "_start": time.perf_counter()}


def pytest_runtest_logreport(report):
    if _TRACER is not None and report.nodeid in _TESTS and report.outcome == "failed":
        _TESTS[report.nodeid]["passed"] = False


def pytest_runtest_logfinish(nodeid, location):
    if _TRACER is not None and nodeid in _TESTS:
        entry = _TESTS[nodeid]
        entry["seconds"] = round(time.perf_counter() - entry.pop("_start"), 4)
        _TRACER.context = IMPORT


def pytest_unconfigure(config):
    if _TRACER is None:
        return
    sys.settrace(None)
    threading.settrace(None)  # type: ignore[arg-type]
    out = {
        "lines": {f: {str(n): sorted(ctx) for n, ctx in sorted(lines.items())} for f, lines in _TRACER.lines.items()},
        "tests": _TESTS,
    }
    with open(os.environ["MUTATION_TRACE_OUT"], "w", encoding="utf-8") as handle:
        json.dump(out, handle)
