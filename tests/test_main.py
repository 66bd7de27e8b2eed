"""main.py: what a synth leaves in cdktf.out (only the stacks of existing environments), the
summary from the manifest, and DP_ENVIRONMENTS (contract C4)."""

from __future__ import annotations

from pathlib import Path

import main
from tests.support import environment_names, fake_synth_out

ENVS = environment_names()


TWO_RESOURCES = {"resource": {"t": {"a": {}, "b": {}}}}


def test_prune_removes_only_stacks_of_environments_that_no_longer_exist(tmp_path):
    fake_synth_out(tmp_path, {"dev-bootstrap": TWO_RESOURCES, "dev-platform": TWO_RESOURCES})
    for leftover in ("gone-bootstrap", "gone-platform", "prod-platform"):
        (tmp_path / "stacks" / leftover).mkdir()
    assert main.prune(tmp_path, declared={"prod"}) == ["gone-bootstrap", "gone-platform"]
    assert sorted(p.name for p in (tmp_path / "stacks").iterdir()) == ["dev-bootstrap", "dev-platform", "prod-platform"]


def test_summary_comes_from_the_manifest_not_the_directory(tmp_path):
    fake_synth_out(tmp_path, {"dev-platform": TWO_RESOURCES})
    (tmp_path / "stacks" / "gone-platform").mkdir()
    (tmp_path / "stacks" / "gone-platform" / "cdk.tf.json").write_text("{}")
    assert main.stack_summary(tmp_path) == [("dev-platform", 2)]


def test_selected_synth_leaves_the_others_and_removes_phantoms(tmp_path, monkeypatch, capsys):
    """One real synth of one environment: DP_ENVIRONMENTS as make diff/deploy set it."""
    outdir = tmp_path / "out"
    for leftover in ("gone-platform", *(f"{e}-platform" for e in ENVS[1:])):
        (outdir / "stacks" / leftover).mkdir(parents=True)
    (outdir / main.COMPLETE).parent.mkdir(parents=True, exist_ok=True)
    (outdir / main.COMPLETE).touch()
    monkeypatch.setenv("CDKTF_OUTDIR", str(outdir))
    monkeypatch.setenv(main.SELECT_VAR, ENVS[0])
    assert main.main() == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"synth: {ENVS[0]} (DP_ENVIRONMENTS) ..."
    assert [line.split(":")[0] for line in out[1:3]] == main.stack_names(ENVS[0])
    assert out[3] == "removed the output of stacks that no longer exist: gone-platform"
    assert sorted(main.manifest_stacks(outdir)) == main.stack_names(ENVS[0])
    kept = sorted(p.name for p in (outdir / "stacks").iterdir())
    assert kept == sorted([*main.stack_names(ENVS[0]), *(f"{e}-platform" for e in ENVS[1:])])
    assert not (outdir / main.COMPLETE).exists(), "a partial synth must not pass for a complete one (make scan/review re-synth)"


def test_synth_runs_optimized_and_no_check_on_its_path_is_an_assert():
    """`make synth` runs `python -O` (the jsii bindings skip their Python-side type checks; Node checks
    again), which also drops assert statements: every module a synth imports from this repository
    raises instead, and the bench times the floor and the synth with the same flags."""
    import ast
    import re
    import sys

    import dataplatform.guardrails  # noqa: F401
    import dataplatform.stacks.bootstrap  # noqa: F401
    import dataplatform.stacks.platform  # noqa: F401
    from dataplatform.tools.bench import SYNTH_FLAGS

    repo = Path(main.__file__).resolve().parent
    files = {Path(m.__file__).resolve() for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
    ours = sorted(f for f in files if f.is_relative_to(repo) and not {".venv", "tests", "tools"} & set(f.relative_to(repo).parts))
    assert Path(main.__file__).resolve() in ours and len(ours) > 40
    asserting = [f"{f.relative_to(repo)}:{n.lineno}" for f in ours for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Assert)]
    assert asserting == []
    makefile = (repo / "Makefile").read_text()
    assert re.search(r"^SYNTH := \$\(PY\) (.*) main\.py$", makefile, re.M).group(1).split() == SYNTH_FLAGS
    assert re.search(r"^synth: .*\n\t@\$\(SYNTH\)$", makefile, re.M)
