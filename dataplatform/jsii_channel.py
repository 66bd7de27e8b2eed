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
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import socket
import subprocess
import threading

CHECKED_JSII = "1.142.0"
KERNEL = "lib/program.js"
CHANNEL = "readFD:3,writeFD:3"
"""How the checked kernel opens its API channel (lib/program.js)."""

_installed = False


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
    ours, theirs = socket.socketpair()
    # The shell puts the socket (its stdin) on fd 3, where the kernel expects its channel, and
    # execs Node with /dev/null as stdin; the arguments are the relay's for its child.
    self._process = subprocess.Popen(
        ["sh", "-c", 'exec "$@" 3<&0 0</dev/null', "sh", node, "--max-old-space-size=4069", "--preserve-symlinks", kernel],
        stdin=theirs, env=environ)
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
