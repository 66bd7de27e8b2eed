"""Storage, checkpoint and table semantics that the delivery guarantee rests on."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from unittest import mock

import pytest

from workloads.etl import checkpoint
from workloads.etl.storage import LocalObjectStore, ObjectChanged, ObjectRef, PreconditionFailed

from .conftest import T0

# --- local object store -------------------------------------------------------------------


def test_local_compare_and_swap(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "ctl" / "cp.json")
    assert store.read(uri) == (None, 0)
    g1 = store.write_if_generation_match(uri, b"one", 0)
    with pytest.raises(PreconditionFailed, match=f"^{re.escape(uri)} is at generation {g1}, not 0$"):
        store.write_if_generation_match(uri, b"again", 0)  # 0 means "must not exist"
    g2 = store.write_if_generation_match(uri, b"two", g1)
    assert g2 > g1
    with pytest.raises(PreconditionFailed, match=f"^{re.escape(uri)} is at generation {g2}, not {g1}$"):
        store.write_if_generation_match(uri, b"stale", g1)
    assert store.read(uri) == (b"two", g2)


def test_local_generations_never_repeat_even_with_a_frozen_clock(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "cp.json")
    generation = store.write_if_generation_match(uri, b"0", 0)
    with mock.patch("os.replace", side_effect=lambda src, dst: (os.rename(src, dst), os.utime(dst, ns=(generation, generation)))):
        assert store.write_if_generation_match(uri, b"1", generation) == generation + 1


@pytest.fixture
def landed(tmp_path):
    """A local store with one landed file, land/a.parquet = b"v1": (store, its path, its listed version)."""
    store = LocalObjectStore()
    path = tmp_path / "land" / "a.parquet"
    path.parent.mkdir()
    path.write_bytes(b"v1")
    (ref,) = store.list(str(tmp_path / "land") + "/")
    return store, path, ref


def test_local_download_pins_the_generation(tmp_path, landed):
    store, path, ref = landed
    store.download(ref, str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_bytes() == b"v1"
    os.utime(path, ns=(ref.generation + 5, ref.generation + 5))
    with pytest.raises(ObjectChanged, match=f"^{re.escape(ref.uri)} is no longer at generation {ref.generation}$"):
        store.download(ref, str(tmp_path / "copy"))
    path.unlink()
    with pytest.raises(ObjectChanged, match=f"^{re.escape(ref.uri)} no longer exists$"):
        store.download(ref, str(tmp_path / "copy"))


# --- local archive -----------------------------------------------------------------------


def test_local_archive_moves_one_generation_and_keeps_a_newer_one(tmp_path, landed):
    store, path, ref = landed
    dest = str(tmp_path / "archive" / "a.1.parquet")
    store.archive(ref, dest)
    store.archive(ref, dest)  # idempotent
    assert not path.exists() and (tmp_path / "archive" / "a.1.parquet").read_bytes() == b"v1"
    path.write_bytes(b"v2")
    newer = store.list(str(tmp_path / "land") + "/")[0]
    store.archive(ObjectRef(newer.uri, newer.generation - 1), str(tmp_path / "archive" / "a.0.parquet"))
    assert path.read_bytes() == b"v2"  # a different (newer) generation is never archived away


# --- checkpoint ---------------------------------------------------------------------------


def outcome(uri, generation, valid=1, quarantined=0):
    return {"uri": uri, "generation": str(generation), "valid_rows": valid, "quarantined_rows": quarantined, "status": "loaded"}


def test_commit_reports_each_file_version_to_exactly_one_run(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "cp.json")
    assert checkpoint.commit(store, uri, "p", [outcome("a", 1), outcome("b", 1)]) == [outcome("a", 1), outcome("b", 1)]
    # A concurrent run that processed a and c: only c is new.
    assert checkpoint.commit(store, uri, "p", [outcome("a", 1), outcome("c", 1)]) == [outcome("c", 1)]
    # A newer generation of a is new data; an older one never moves the entry back.
    assert checkpoint.commit(store, uri, "p", [outcome("a", 2)]) == [outcome("a", 2)]
    assert checkpoint.commit(store, uri, "p", [outcome("a", 1)]) == []
    state = checkpoint.load(store, uri, "p")
    assert state["version"] == 2
    assert {k: v["generation"] for k, v in state["files"].items()} == {"a": "2", "b": "1", "c": "1"}
    assert checkpoint.pending(state, [ObjectRef("a", 2), ObjectRef("b", 5), ObjectRef("d", 1)]) == [
        ObjectRef("b", 5), ObjectRef("d", 1)
    ]


def test_concurrent_commits_lose_no_entry(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "cp.json")
    results = {}

    def commit(worker):
        results[worker] = checkpoint.commit(store, uri, "p", [outcome(f"f{worker}-{i}", 1) for i in range(5)] + [outcome("shared", 1)])

    threads = [threading.Thread(target=commit, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checkpoint.load(store, uri, "p")["files"]) == 31
    assert sum(1 for added in results.values() for o in added if o["uri"] == "shared") == 1


def test_checkpoint_of_another_pipeline_is_refused(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "cp.json")
    checkpoint.commit(store, uri, "orders", [outcome("a", 1)])
    with pytest.raises(ValueError, match="belongs to pipeline 'orders'"):
        checkpoint.load(store, uri, "customers")


def test_a_version_1_checkpoint_is_read_as_committed_files(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "cp.json")
    v1 = {"version": 1, "pipeline": "p", "files": {"a": {"generation": "3", "valid_rows": 1, "quarantined_rows": 0,
                                                          "committed_at": "2024-01-01T00:00:00+00:00"}}}
    store.write_if_generation_match(uri, json.dumps(v1).encode(), 0)
    state = checkpoint.load(store, uri, "p")
    assert state["version"] == 2 and state["loads"] == {} and state["attempts"] == {}
    assert checkpoint.is_done(state, ObjectRef("a", 3)) and not checkpoint.is_done(state, ObjectRef("a", 4))


def test_failed_attempts_count_per_generation_and_reset_for_a_new_one():
    state = checkpoint.empty("p")
    assert checkpoint.count_failure(state, "a", "1", "boom", "t1", "run-1") == 1
    assert checkpoint.count_failure(state, "a", "1", "boom", "t2", "run-2") == 2
    assert checkpoint.attempts(state, ObjectRef("a", 1)) == 2 and checkpoint.attempts(state, ObjectRef("a", 2)) == 0
    assert checkpoint.count_failure(state, "a", "2", "new data", "t3", "run-3") == 1
    checkpoint.add_committed(state, [outcome("a", 2)], "t4")
    assert state["attempts"] == {}  # committing a version clears its failures


def test_a_run_counts_at_most_one_failed_attempt_per_file_version():
    """A retried step of a run settles the same outcomes again: counting that run again is a no-op."""
    state = checkpoint.empty("p")
    assert checkpoint.count_failure(state, "a", "1", "boom", "t1", "run-1") == 1
    assert checkpoint.count_failure(state, "a", "1", "boom", "t2", "run-1") == 1
    assert checkpoint.count_failure(state, "a", "1", "boom", "t3", "run-2") == 2
    assert checkpoint.count_failure(state, "a", "2", "new data", "t4", "run-1") == 1  # a new version starts over
    assert state["attempts"]["a"]["runs"] == ["run-1"]


def test_forget_keeps_committed_entries_for_the_tombstone_horizon():
    """A committed entry guards against a slow run that listed the file before it left landing: it
    is dropped only once it left (archived, or unlisted) more than TOMBSTONE before the listing."""
    at = lambda delta: (T0 + delta).isoformat()  # noqa: E731
    state = checkpoint.empty("p")
    checkpoint.add_committed(state, [outcome("gone", 1), outcome("kept", 1), outcome("archived", 1)], at(dt.timedelta(0)))
    checkpoint.count_failure(state, "gone-failing", "1", "x", at(dt.timedelta(0)), "run-1")
    checkpoint.mark_archived(state, [ObjectRef("archived", 2)], at(dt.timedelta(hours=1)))  # another generation: not this entry
    assert "archived_at" not in state["files"]["archived"]
    checkpoint.mark_archived(state, [ObjectRef("archived", 1)], at(dt.timedelta(hours=1)))
    assert state["files"]["archived"]["archived_at"] == at(dt.timedelta(hours=1))

    checkpoint.forget(state, {"kept"}, at(checkpoint.TOMBSTONE))  # at the horizon: nothing is older than it yet
    assert sorted(state["files"]) == ["archived", "gone", "kept"] and state["attempts"] == {}
    checkpoint.forget(state, {"kept"}, at(checkpoint.TOMBSTONE + dt.timedelta(seconds=1)))  # one past: unlisted 'gone' goes
    assert sorted(state["files"]) == ["archived", "kept"]
    checkpoint.forget(state, {"kept"}, at(checkpoint.TOMBSTONE + dt.timedelta(hours=1, seconds=1)))  # archived an hour later
    assert sorted(state["files"]) == ["kept"]  # a file still in landing keeps its entry (its archive was interrupted)


def test_a_listing_older_than_the_claim_limit_may_not_claim():
    assert not checkpoint.listing_too_old(T0.isoformat(), now=T0 + checkpoint.MAX_LISTING_AGE)
    assert checkpoint.listing_too_old(T0.isoformat(), now=T0 + checkpoint.MAX_LISTING_AGE + dt.timedelta(seconds=1))
    assert checkpoint.MAX_LISTING_AGE < checkpoint.TOMBSTONE  # every claim happens while the entries that guard it exist


def test_pending_skips_committed_and_claimed_versions_oldest_first():
    state = checkpoint.empty("p")
    checkpoint.add_committed(state, [outcome("done", 1)], "t")
    state["loads"]["run-a"] = {"job_id": "j", "started_at": "t", "files": [outcome("claimed", 5)]}
    listing = [ObjectRef("new", 1, 10, "2024-01-02T00:00:00Z"), ObjectRef("old", 1, 10, "2024-01-01T00:00:00Z"),
               ObjectRef("done", 1), ObjectRef("claimed", 5), ObjectRef("claimed-newer", 6)]
    assert [r.uri for r in checkpoint.pending(state, listing)] == ["claimed-newer", "old", "new"]
