"""Config tier: the shipped files load; bad input yields one clear line per problem."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplatform.config import ConfigError, Profile, load_environment, load_environments, parse_environment

REPO = Path(__file__).resolve().parent.parent
DEV = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
SOURCE = "environments/dev.yaml"


def test_shipped_environments_load():
    envs = {e.name: e for e in load_environments()}
    assert envs["dev"].profile is Profile.lean
    assert envs["prod"].profile is Profile.managed
    assert envs["prod"].storage.dual_region == "EUR4"


def _set(data: dict, path: str, value) -> dict:
    """Copy of data with the dotted/indexed path set (value DELETE removes the key)."""
    data = copy.deepcopy(data)
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return data


DELETE = object()

# (mutation path, value, expected fragment of the one error line)
BAD_CASES = [
    ("region", DELETE, "region: Field required"),
    ("project_id", "Acme_Prod", "project_id: expected a GCP project id"),
    ("region", "europe west1", "region: expected a GCP region"),
    ("profile", "cheap", "profile: Input should be 'lean' or 'managed'"),
    ("name_prefix", "acme-analytics-plat", "name_prefix: gives an invalid service account name"),
    ("name_prefix", "google", "name_prefix: gives an invalid bucket name"),
    ("labels.owner", "Data Platform", "labels: label 'owner' value"),
    ("labels", {"owner": "x"}, "labels: missing required label 'cost_center'"),
    ("labels.CostCenter", "x", "labels: label key 'CostCenter'"),
    ("network.subnet_cidr", "8.8.8.0/24", "network.subnet_cidr: expected a private"),
    ("network.subnet_cidr", "10.0.0.0/33", "network.subnet_cidr: expected an IPv4 CIDR"),
    ("storage.coldline_after_days", 30, "storage: coldline_after_days must be greater"),
    ("sla_tier", "high", "sla_tier high needs storage.dual_region"),
    ("github.repository", "not a repo", "github.repository: expected 'owner/name'"),
    ("alert_emails", ["nobody"], "alert_emails[0]: String should match pattern"),
    ("pipelines", [], "pipelines: List should have at least 1 item"),
    ("pipelines[0].name", "Orders-2024", "pipelines[0].name: expected 1-30 chars"),
    ("pipelines[0].schedule", "hourly", "pipelines[0].schedule: expected a 5-field cron"),
    ("pipelines[0].schedule", None, "pipelines[0]: schedule is required when trigger is both"),
    ("pipelines[0].max_workers", 0, "pipelines[0].max_workers: Input should be greater than or equal to 1"),
    ("pipelines[0].schema[0].type", "STRNG", "pipelines[0].schema[0].type: Input should be 'STRING'"),
    ("pipelines[0].schema[0].min", 1, "pipelines[0].schema[0]: min/max are only allowed on numeric types"),
    ("pipelines[0].schema[2].min", 10**7, "pipelines[0].schema[2]: min (10000000.0) must not exceed max"),
    ("pipelines[0].schema[1].name", "order_id", "pipelines[0].schema: column 'order_id' is declared twice"),
    ("pipelines[0].schema[0].name", "order id", "pipelines[0].schema[0].name: expected 1-300 chars"),
    ("pipelines[0].sink", "bq", "pipelines[0].sink: Extra inputs are not permitted"),
    ("name", "qa", "name: must equal the file name 'dev'"),
]


@pytest.mark.parametrize("path,value,expected", BAD_CASES, ids=[f"{p}={v!r}"[:50] for p, v, _ in BAD_CASES])
def test_bad_config_gives_one_clear_line(path, value, expected):
    with pytest.raises(ConfigError) as info:
        parse_environment(_set(DEV, path, value), SOURCE, expected_name="dev")
    lines = info.value.problems
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{SOURCE}: "), lines
    assert expected in lines[0], lines


def test_several_problems_are_all_reported():
    data = _set(_set(DEV, "region", DELETE), "pipelines[0].max_workers", -1)
    with pytest.raises(ConfigError) as info:
        parse_environment(data, SOURCE)
    assert len(info.value.problems) == 2


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text("name: dev\nlabels: {owner: [\n")
    with pytest.raises(ConfigError, match=r"dev.yaml: line \d+, column \d+: invalid YAML"):
        load_environment(path)


def test_non_mapping_file(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"dev.yaml: \(top level\): expected a mapping"):
        load_environment(path)


def test_duplicate_project_across_environments(tmp_path):
    for name in ("dev", "qa"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**DEV, "name": name}))
    with pytest.raises(ConfigError, match="project_id: 'acme-data-dev' is used by another environment"):
        load_environments(tmp_path)


def test_main_prints_problems_without_traceback(tmp_path, monkeypatch, capsys):
    import main

    (tmp_path / "dev.yaml").write_text(yaml.safe_dump(_set(DEV, "profile", "cheap")))
    monkeypatch.setenv("ENVIRONMENTS_DIR", str(tmp_path))
    monkeypatch.setenv("CDKTF_OUTDIR", str(tmp_path / "out"))
    assert main.main() == 2
    err = capsys.readouterr().err
    assert re.search(r"dev\.yaml:\d+: profile: Input should be 'lean' or 'managed'", err)  # file:line: field
    assert "Traceback" not in err


# ---------------------------------------------------------------- property-based

_junk = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=40), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{prefix}.{key}" if prefix else key
            yield here
            yield from _paths(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield f"{prefix}[{i}]"
            yield from _paths(value, f"{prefix}[{i}]")


ALL_PATHS = sorted(set(_paths(DEV)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.one_of(_junk, st.just(DELETE))), min_size=1, max_size=4),
    extra=st.one_of(st.none(), st.text(min_size=1, max_size=10)),
)
def test_random_bad_input_always_gives_the_clear_error(mutations, extra):
    data = DEV
    for path, value in mutations:
        try:
            data = _set(data, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    if extra:
        data = {**data, extra: 1} if isinstance(data, dict) else data
    try:
        parse_environment(data, SOURCE, expected_name="dev")
    except ConfigError as exc:
        assert exc.problems
        for line in exc.problems:
            assert line.startswith(f"{SOURCE}: ") and "\n" not in line and "Traceback" not in line
            assert len(line.split(": ", 2)) == 3, line  # file: field path: what was expected
