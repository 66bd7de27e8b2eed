"""The benchmark's own arithmetic and its generated environments (the timings run in `make bench`)."""

from dataplatform.config import load_environments
from dataplatform.tools.bench import environments, slope


def test_slope_of_a_line():
    assert slope([(1, 2.0), (10, 2.9), (100, 11.9)]) == pytest_approx(0.1)


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-6)


def test_generated_environments_are_valid(tmp_path):
    envs = load_environments(environments(tmp_path, 3, 5))
    assert len(envs) == 3 and all(len(e.pipelines) == 5 for e in envs)
    assert len({e.project_id for e in envs}) == 3
