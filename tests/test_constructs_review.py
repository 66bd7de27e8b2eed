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


def test_folder_grants_refuse_basic_roles_and_are_recorded_like_every_grant():
    """Managed-folder grants go through the one IAM helper: basic roles refused, the member in the ledger."""
    from dataplatform.constructs.iam import GrantLedger, Principal
    from dataplatform.constructs.lake_bucket import BucketKind, LakeBucket, LakeBucketSettings
    from tests.support import new_stack

    stack = new_stack()
    stack.grant_ledger = ledger = GrantLedger()
    lake = LakeBucket(stack, "b", LakeBucketSettings(name="acme-test-b", location="europe-west1", kind=BucketKind.DATA,
                                                     folders=("orders",)))
    alice = Principal("alice", "serviceAccount:alice@p.iam.gserviceaccount.com")
    with pytest.raises(ValueError, match="basic role roles/owner is never granted"):
        lake._grant_in("orders", "roles/owner", alice)
    member = lake.grant_read_write_in("orders", alice)
    assert member is not None
    assert [(g.member, g.resource, g.on_owner) for g in ledger.grants] == [(alice.member, member, True)]
