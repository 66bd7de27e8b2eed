"""Snapshot tier: the whole synthesized JSON of each stack, in tests/__snapshots__/<stack>.json.

Recorded from the synth (`make baselines`), one per stack of every environment file; a new
environment's snapshots are recorded on its first run. Asset content hashes are replaced by
`<asset-hash>`, so editing a comment in the launcher or a DAG does not touch the snapshots.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.baselines import COMMAND, Baselines, without_asset_hashes
from tests.support import new_stack, stack_names, synth

SNAPSHOTS = Baselines(Path(__file__).parent / "__snapshots__", ".json")
STACKS = stack_names()


def test_no_snapshot_of_a_stack_that_no_longer_exists(pytestconfig):
    stale = SNAPSHOTS.prune(pytestconfig, STACKS)
    assert not stale, f"snapshots of stacks that no longer exist: {', '.join(stale)}; run `{COMMAND}`"


@pytest.mark.parametrize("stack_name", STACKS)
def test_stack_snapshot(stacks, stack_name, pytestconfig):
    SNAPSHOTS.check(pytestconfig, stack_name, without_asset_hashes(stacks[stack_name]))


def test_a_comment_in_a_shipped_file_does_not_change_the_snapshot(tmp_path):
    """The real asset path: the same upload, before and after a comment is added to the file."""
    from dataplatform.constructs.assets import upload

    source = tmp_path / "launcher"
    source.mkdir()
    (source / "main.py").write_text("def launch(event):\n    return event\n")

    def synthesized() -> dict:
        stack = new_stack()
        upload(stack, "zipped", bucket="b", path=source, object_name=lambda h: f"functions/launcher-{h}.zip", archive=True)
        upload(stack, "file", bucket="b", path=source / "main.py", object_name="dags/main.py")
        return synth(stack)

    before = synthesized()
    (source / "main.py").write_text("# a comment\ndef launch(event):\n    return event\n")
    after = synthesized()
    assert json.dumps(before) != json.dumps(after), "the asset hashes should differ in the raw JSON"
    assert without_asset_hashes(before) == without_asset_hashes(after)
    assert "<asset-hash>" in json.dumps(without_asset_hashes(after))
