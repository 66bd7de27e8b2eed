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


def test_cold_start_runs_without_this_checkout_on_path(monkeypatch):
    from dataplatform.tools.bench import REPO, clean_environment

    monkeypatch.setenv("PATH", f"{REPO}/node_modules/.bin:/usr/bin")
    monkeypatch.setenv("DP_ENVIRONMENTS", "dev")
    env = clean_environment()
    assert env["PATH"] == "/usr/bin" and "DP_ENVIRONMENTS" not in env


def test_summary_of_samples():
    from dataplatform.tools.bench import summarize

    row = summarize("x", [(1.0, 10), (3.0, 30), (2.0, 20)])
    assert (row["median_s"], row["min_s"], row["max_s"], row["peak_rss_mib"], row["runs"]) == (2.0, 1.0, 3.0, 30, 3)
