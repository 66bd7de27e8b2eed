"""A warm pytest for `make mutation`: imports the heavy third-party modules once, then forks one
child per mutant, so a mutant pays for its tests, not for importing pytest, hypothesis, Beam...

    <group python> -m dataplatform.tools.mutation_worker <module,module,...>   (cwd: a scratch copy)

Reads one JSON request a line on stdin, {"args": [pytest args], "timeout": s, "output": path,
"tmp": dir}, answers one JSON line {"code": pytest exit code, -1 on timeout}. Each child gets
`tmp` as its TMPDIR, removed after it (a child ends with os._exit: what the tests leave in a
temporary directory, such as the jsii runtime's copy, is removed here). Standard library only (the
workloads' venv runs it). Nothing of the repository is imported before the fork: each child
imports the (mutated) sources fresh. Modules that start processes or threads when imported
(cdktn starts the jsii runtime) must not be preloaded.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time


def _child(args: list[str], output: str, tmp: str) -> None:
    os.setpgid(0, 0)  # the parent can kill whatever the tests start
    os.makedirs(tmp, exist_ok=True)
    os.environ["TMPDIR"] = tempfile.tempdir = tmp
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 3
    try:
        import pytest

        code = int(pytest.main(args))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            try:
                os.killpg(pid, signal.SIGKILL)  # whatever the tests left running (a jsii runtime, an emulator)
            except ProcessLookupError:
                pass
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return -1
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def main() -> None:
    for name in filter(None, (sys.argv[1] if len(sys.argv) > 1 else "").split(",")):
        importlib.import_module(name)
    import pytest  # noqa: F401  (imported once, here)

    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request["args"], request["output"], request["tmp"])
        code = _wait(pid, float(request["timeout"]))
        shutil.rmtree(request["tmp"], ignore_errors=True)
        sys.stdout.write(json.dumps({"code": code}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
