"""Fixes of the construct review, each pinned on the synthesized stacks of every environment."""

from __future__ import annotations

import pytest

from dataplatform import tfjson
from dataplatform.config import Profile, load_environments

ENVIRONMENTS = {e.name: e for e in load_environments()}


@pytest.mark.parametrize("env_name", sorted(ENVIRONMENTS))
def test_table_grants_reference_their_table(stacks, env_name):
    """A grant on a BigQuery table names the table by reference, so Terraform creates it after the
    table (a grant on a table that does not exist yet is a 404 on a fresh project)."""
    env = ENVIRONMENTS[env_name]
    members = [r for name in (f"{env_name}-bootstrap", f"{env_name}-platform") for r in tfjson.resources(stacks[name])
               if r.type == "google_bigquery_table_iam_member"]
    # One read grant per (source table, ML identity): runner always; pipeline and workbench when managed.
    sources = {m.pipeline for m in env.ml.models} if env.ml is not None else set()
    assert len(members) == len(sources) * (3 if env.profile is Profile.managed else 1)
    tables = {r.logical_id: r.body for r in tfjson.resources(stacks[f"{env_name}-platform"]) if r.type == "google_bigquery_table"}
    for member in members:
        for attr in ("dataset_id", "table_id"):
            value = member.body[attr]
            assert value.startswith("${google_bigquery_table."), (member.path, attr, value)
            logical_id = value.removeprefix("${google_bigquery_table.").split(".")[0]
            assert logical_id in tables, (member.path, value)
        assert tables[logical_id]["table_id"] in sources, member.path
