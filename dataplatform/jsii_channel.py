"""Talk to the jsii kernel directly instead of through jsii's relay process.

jsii's Python runtime starts `node bin/jsii-runtime.js`, which starts a second Node process,
`node lib/program.js` (the kernel), and relays every message between the two through its
event loop: Python -> relay -> kernel -> relay -> Python. A synth sends ~1,800 messages (one
per construct created, property read, override...), so the relay's two extra hops per round
trip cost about a second of a warm synth on a busy 2-core machine (about a third of it CPU).

`install()` makes the runtime start the kernel itself, with its API channel (file descriptor 3,
where the relay would connect) on a socket pair whose other end Python reads and writes. The
kernel, the protocol and every message are unchanged; the kernel's own stdout and stderr (Node
warnings) go to this process's, as the relay forwarded them. It applies only where it was
checked: the jsii version below (whose embedded kernel reads and writes fd 3), a POSIX shell,
no JSII_RUNTIME override; anywhere else the runtime is left as it is. `make synth` (main.py), the
test suite and the bench's floor all run this way.

`Preload` imports jsii packages on a background thread, so that Python work can run while the
kernel loads an assembly (main.py reads the environment files meanwhile); `kill()` stops a kernel
that will not be used (a refused synth) without waiting for its load to end.
"""

from __future__ import annotations

import atexit
import importlib
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading

CHECKED_JSII = "1.142.0"
KERNEL = "lib/program.js"
CHANNEL = "readFD:3,writeFD:3"
"""How the checked kernel opens its API channel (lib/program.js)."""

_installed = False
_kernels: list[subprocess.Popen] = []
_lock = threading.Lock()
_closed = False


def supported() -> bool:
    import jsii
    import jsii._embedded.jsii as embedded

    return (jsii.__version__ == CHECKED_JSII and KERNEL in embedded.EMBEDDED_FILES.values() and os.name == "posix"
            and shutil.which("sh") is not None and "JSII_RUNTIME" not in os.environ)


def install() -> bool:
    """Start the jsii kernel without the relay from now on (call before the first jsii import
    starts it); False, and nothing changed, where that is not supported."""
    global _installed
    if _installed:
        return True
    if not supported():
        return False
    from jsii._kernel.providers import process

    process._NodeProcess.start = _start
    process._NodeProcess.stop = _stop
    _installed = True
    return True


def _start(self) -> None:
    environ = os.environ.copy()
    environ["JSII_AGENT"] = f"Python/{platform.python_version()}"
    node = environ.get("JSII_NODE", "node")
    relay = self._jsii_runtime()  # extracts the embedded runtime into a temporary directory
    kernel = os.path.join(os.path.dirname(os.path.dirname(relay)), *KERNEL.split("/"))
    with open(kernel, encoding="utf-8") as f:
        if CHANNEL not in f.read():
            raise RuntimeError(f"{kernel} does not open its API channel on fd 3; run without dataplatform.jsii_channel")
    # The kernel keeps a scratch directory under TMPDIR and removes it when it exits normally; a
    # killed kernel (kill()) cannot, so it gets a TMPDIR of its own, which stop() removes.
    environ["TMPDIR"] = self._kernel_tmp = tempfile.mkdtemp(prefix="jsii-kernel-tmp-")
    ours, theirs = socket.socketpair()
    # The shell puts the socket (its stdin) on fd 3, where the kernel expects its channel, and
    # execs Node with /dev/null as stdin; the arguments are the relay's for its child.
    with _lock:
        if _closed:
            raise RuntimeError("the jsii kernel was shut down (dataplatform.jsii_channel.kill)")
        self._process = subprocess.Popen(
            ["sh", "-c", 'exec "$@" 3<&0 0</dev/null', "sh", node, "--max-old-space-size=4069", "--preserve-symlinks", kernel],
            stdin=theirs, env=environ)
        _kernels.append(self._process)
    theirs.close()
    self._channel = ours
    self._process.stdin = ours.makefile("wb")
    self._process.stdout = ours.makefile("rb")
    self.sink_thread = threading.Thread(target=lambda: None)  # nothing to relay; jsii's stop() expects one
    atexit.register(self.stop)
    self.handshake()


def _stop(self) -> None:
    atexit.unregister(self.stop)
    process = getattr(self, "_process", None)
    if process is None:
        return
    try:
        if not process.stdin.closed:
            process.stdin.write(b'{"exit":0}\n')
            process.stdin.close()
    except OSError:  # the kernel is gone already
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.terminate()
    process.stdout.close()
    self._channel.close()
    self._ctx_stack.close()
    shutil.rmtree(getattr(self, "_kernel_tmp", ""), ignore_errors=True)


def kill() -> None:
    """Kill the kernel now, loading or not, and refuse to start another: for a process that ends
    without using it (a refused synth), so that it does not wait for the kernel to finish a load."""
    global _closed
    with _lock:
        _closed = True
        for process in _kernels:
            process.kill()


class Preload:
    """Import `modules` on a daemon thread. Importing a jsii package is Python work (its classes)
    and then a wait on the kernel while it loads the package's assembly (2.5 s of Node for the
    google provider, with Python idle); `python_done` is set once the modules named in
    `python_first` are imported, from when this thread mostly waits: other Python work done from
    then on runs while the kernel loads (before then, it would only delay the load)."""

    def __init__(self, python_first: list[str], modules: list[str]):
        self.python_done = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(python_first, modules), name="jsii-preload", daemon=True)
        self._thread.start()

    def _run(self, python_first: list[str], modules: list[str]) -> None:
        try:
            install()
            for module in python_first:
                importlib.import_module(module)
            self.python_done.set()
            for module in modules:
                importlib.import_module(module)
        except BaseException as exc:  # re-raised by wait(), in the thread that needs the modules
            self._error = exc
        finally:
            self.python_done.set()

    def wait(self) -> None:
        """Block until every module is imported; re-raise what the import raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
