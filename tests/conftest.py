"""Session-wide fixtures: every environment is synthesized once per test session."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Node 22 from node_modules (jsii's runtime), and keep Testing.app() leftovers out of /tmp.
os.environ["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
_tmp = tempfile.mkdtemp(prefix="dataplatform-tests-")
os.environ["TMPDIR"] = _tmp
tempfile.tempdir = _tmp
# The suite covers every environment file, whatever the shell selected for a deploy.
os.environ.pop("DP_ENVIRONMENTS", None)

# The jsii kernel without its relay process, as `make synth` runs it (before anything loads cdktn).
from dataplatform import jsii_channel  # noqa: E402

jsii_channel.install()


def pytest_addoption(parser):
    from tests.baselines import COMMAND, UPDATE_OPTION

    parser.addoption(UPDATE_OPTION, action="store_true",
                     help=f"re-record the inventories and snapshots from this synth and drop stale ones ({COMMAND})")


@pytest.fixture(scope="session")
def synth_app(tmp_path_factory):
    """The app of every environment, synthesized once (aspects, wiring and guardrails run)."""
    from dataplatform.guardrails import synth
    from main import build_app

    app = build_app(tmp_path_factory.mktemp("cdktf.out"))
    synth(app)
    return app


@pytest.fixture(scope="session")
def synth_dir(synth_app) -> Path:
    return Path(synth_app.outdir)


@pytest.fixture(scope="session")
def stacks(synth_dir) -> dict[str, dict]:
    """Stack name -> synthesized cdk.tf.json."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((synth_dir / "stacks").glob("*/cdk.tf.json"))}


@pytest.fixture(scope="session")
def environments():
    from dataplatform.config import load_environments

    return {env.name: env for env in load_environments()}
