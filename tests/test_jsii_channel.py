"""dataplatform.jsii_channel: the jsii kernel runs without its relay process, in this suite as in `make synth`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dataplatform import jsii_channel

REPO = Path(__file__).resolve().parent.parent


def test_this_session_talks_to_the_kernel_directly():
    import cdktn  # noqa: F401  (starts the kernel if nothing has yet)
    from jsii._kernel import Kernel

    pid = Kernel().provider._process._process.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[-2].endswith(b"/lib/program.js"), cmdline  # the kernel itself, not bin/jsii-runtime.js
    children = Path(f"/proc/{pid}/task/{pid}/children")
    assert not children.exists() or children.read_text().split() == [], "no relay: the kernel starts no process of its own"


def test_it_stays_off_where_it_was_not_checked(monkeypatch):
    assert jsii_channel.supported()
    monkeypatch.setenv("JSII_RUNTIME", "/somewhere/else/jsii-runtime.js")
    assert not jsii_channel.supported()
    monkeypatch.delenv("JSII_RUNTIME")
    monkeypatch.setattr(jsii_channel, "CHECKED_JSII", "0.0.0")
    assert not jsii_channel.supported()


@pytest.mark.parametrize("ending", ["", "jsii_channel.kill()\n"], ids=["asked to exit", "killed"])
def test_a_process_using_it_ends_its_kernel_and_cleans_up(tmp_path, ending):
    """Asked to exit (jsii's atexit) or killed (main.py once synth is written), the kernel ends with the
    process and leaves nothing in TMPDIR: not the extracted runtime, not the kernel's own scratch directory."""
    probe = ("import os, tempfile\nfrom dataplatform import jsii_channel\nassert jsii_channel.install()\n"
             "from cdktn import App, TerraformStack\napp = App(outdir=os.environ['OUT']); TerraformStack(app, 's'); app.synth()\n"
             "from jsii._kernel import Kernel\nprint(Kernel().provider._process._process.pid)\n" + ending)
    env = {"PATH": f"{REPO / 'node_modules' / '.bin'}:/usr/bin:/bin", "OUT": str(tmp_path / "out"), "TMPDIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    pid = result.stdout.strip()
    assert (tmp_path / "out" / "stacks" / "s" / "cdk.tf.json").exists()
    assert not Path(f"/proc/{pid}").exists(), "the kernel exits with the process"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "the extracted runtime is removed"


def test_a_preload_imports_in_the_background_and_reraises_where_it_is_waited_for():
    loaded = jsii_channel.Preload(["json"], ["cdktn"])
    assert loaded.python_done.wait(timeout=60)
    loaded.wait()
    failed = jsii_channel.Preload(["json"], ["dataplatform.no_such_module"])
    assert failed.python_done.wait(timeout=60)  # set after the first modules, whatever follows
    with pytest.raises(ModuleNotFoundError, match="dataplatform.no_such_module"):
        failed.wait()
    early = jsii_channel.Preload(["dataplatform.no_such_module"], ["json"])
    assert early.python_done.wait(timeout=60)  # set even when the first modules fail: nobody waits forever
    with pytest.raises(ModuleNotFoundError):
        early.wait()
