"""Snapshot tier: the whole synthesized JSON of each stack (update with `make snapshot-update`)."""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

STACKS = ["dev-bootstrap", "dev-platform", "prod-bootstrap", "prod-platform"]


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stack_name", STACKS)
def test_stack_snapshot(stacks, stack_name, snapshot_json):
    assert stacks[stack_name] == snapshot_json
