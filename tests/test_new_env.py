"""`make new-env`: a new environment is one file, a copy of another with its own name and project."""

from __future__ import annotations

import shutil

import pytest

from dataplatform.config import load_environments
from dataplatform.tools import new_env
from tests.support import ENVIRONMENTS, environment_names

SOURCE = environment_names()[0]


@pytest.fixture
def env_dir(tmp_path):
    for path in ENVIRONMENTS.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_copy_differs_only_in_name_and_project(env_dir, capsys):
    assert new_env.main(["zz1", "--from", SOURCE, "--project-id", "acme-data-zz1", "--project-number", "111111111111",
                         "--dir", str(env_dir)]) == 0
    old, new = (env_dir / f"{SOURCE}.yaml").read_text().splitlines(), (env_dir / "zz1.yaml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(old) == len(new) and [b for _, b in changed] == ["name: zz1", "project_id: acme-data-zz1", 'project_number: "111111111111"']
    assert {e.name for e in load_environments(env_dir)} == {*environment_names(), "zz1"}
    assert "wrote" in capsys.readouterr().out


def test_project_number_is_required(env_dir, capsys):
    assert new_env.main(["zz1", "--from", SOURCE, "--project-id", "acme-data-zz1", "--dir", str(env_dir)]) == 2
    assert capsys.readouterr().err.startswith("new-env: PROJECT_NUMBER=<number> is needed")
    assert not (env_dir / "zz1.yaml").exists()


def test_a_project_already_in_use_writes_nothing(env_dir, capsys):
    taken = load_environments(env_dir)[0].project_number
    assert new_env.main(["zz1", "--from", SOURCE, "--project-id", "acme-data-zz1", "--project-number", taken, "--dir", str(env_dir)]) == 2
    assert f"project_number: '{taken}' is already used by" in capsys.readouterr().err
    assert not (env_dir / "zz1.yaml").exists()


@pytest.mark.parametrize("name,message", [("Staging", "NAME='Staging': expected 2-10 chars"), (SOURCE, "exists already")])
def test_bad_names_are_refused(env_dir, capsys, name, message):
    assert new_env.main([name, "--from", SOURCE, "--project-number", "111111111111", "--dir", str(env_dir)]) == 2
    assert message in capsys.readouterr().err


def test_unknown_source_lists_the_environments(env_dir, capsys):
    assert new_env.main(["zz1", "--from", "nope", "--project-number", "1111111", "--dir", str(env_dir)]) == 2
    assert f"(environments: {', '.join(environment_names())})" in capsys.readouterr().err
