"""The production pipeline on DirectRunner against the emulators: buckets in fake-gcs-server,
the table behind the BigQuery stand-in reached by the real client. No mocks of GCS or BigQuery."""

from __future__ import annotations

import datetime as dt
import threading
from unittest import mock

import pytest

from workloads.etl import checkpoint, pipeline
from workloads.etl.pipeline import run
from workloads.etl.storage import GcsObjectStore

from .conftest import good_rows
from .test_pipeline import assert_each_once, bad_rows, counts


def test_runs_load_once_archive_landing_and_leave_no_history_in_the_state(cloud):
    cloud.write("a.parquet", good_rows(1, 20))
    cloud.write("sub/b.parquet", good_rows(21, 10) + bad_rows())
    cloud.put("notes.txt", b"ignored")

    run(cloud.args())
    run(cloud.args())

    first, second = cloud.summaries()
    assert counts(first) == (2, 31, 3) and first["outcome"] == "succeeded"
    assert counts(second) == (0, 0, 0)
    assert_each_once(cloud.table_ids(), list(range(1, 31)) + [1003])
    assert len(cloud.bq.load_jobs()) == 1  # one load job for the run, none for the empty run
    landing = cloud.names("landing/things/")
    assert landing == ["landing/things/notes.txt"]  # data files moved out, the rest untouched
    archived = cloud.names("landing/_archive/things/")
    assert len(archived) == 2 and archived[1].startswith("landing/_archive/things/sub/b.")
    state = cloud.checkpoint()
    assert state["loads"] == {} and state["attempts"] == {}
    assert len(state["files"]) == 2 and all("archived_at" in e for e in state["files"].values())  # tombstones, see below
    assert cloud.names("quarantine/things/") and cloud.names("curated/things/")

    # A run listing after the tombstone horizon leaves nothing of them: no history stays in the state.
    later = (dt.datetime.now(dt.timezone.utc) + checkpoint.TOMBSTONE + dt.timedelta(minutes=1)).isoformat()
    with mock.patch.object(checkpoint, "now_iso", return_value=later):
        run(cloud.args())
    assert cloud.checkpoint()["files"] == {}


def test_a_run_that_listed_before_another_committed_and_archived_does_not_load_again(cloud):
    """Run B lists and processes the files; before B claims its batch, run A loads, commits and
    archives the same files. The committed entries (tombstones) still exist when B claims: B loads nothing."""
    for i in range(3):
        cloud.write(f"f{i}.parquet", good_rows(1 + 10 * i, 10))
    real = checkpoint.listing_too_old
    interleaved = []

    def run_a_first(listed_at, now=None):
        if not interleaved:
            interleaved.append(True)
            run(cloud.args())  # run A, start to finish, while B waits to claim
            assert cloud.names("landing/things/") == []
        return real(listed_at, now)

    with mock.patch.object(pipeline.checkpoint, "listing_too_old", side_effect=run_a_first):
        run(cloud.args())  # run B
    assert interleaved
    assert_each_once(cloud.table_ids(), range(1, 31))
    assert len(cloud.bq.load_jobs()) == 1
    assert sorted(s["processed_files"] for s in cloud.summaries()) == [0, 3]


def test_a_run_whose_listing_is_too_old_claims_nothing_and_asks_for_a_follow_up(cloud):
    cloud.write("f.parquet", good_rows(1, 10))
    with mock.patch.object(pipeline.checkpoint, "listing_too_old", return_value=True):
        run(cloud.args())
    (summary,) = cloud.summaries()
    assert summary["processed_files"] == 0 and summary["backlog_files"] == 1 and cloud.table_ids() == []
    run(cloud.args())
    assert_each_once(cloud.table_ids(), range(1, 11))


def test_crash_between_load_and_commit_recovers_without_a_second_load(cloud):
    for i in range(3):
        cloud.write(f"f{i}.parquet", good_rows(1 + 10 * i, 10))
    with mock.patch.object(pipeline, "resolve_recorded_load", side_effect=RuntimeError("worker lost")):
        with pytest.raises(Exception, match="worker lost"):
            run(cloud.args())
    assert len(cloud.table_ids()) == 30 and cloud.checkpoint()["loads"]
    run(cloud.args())
    assert counts(cloud.summaries()[-1]) == (3, 30, 0)
    assert_each_once(cloud.table_ids(), range(1, 31))
    assert len(cloud.bq.load_jobs()) == 1  # the rerun found the recorded job done: no second job
    assert cloud.names("landing/things/") == []


def test_concurrent_runs_load_every_file_once(cloud):
    for i in range(6):
        cloud.write(f"f{i}.parquet", good_rows(1 + 10 * i, 10))
    errors = []

    def one_run():
        try:
            run(cloud.args())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert_each_once(cloud.table_ids(), range(1, 61))
    assert sum(s["processed_files"] for s in cloud.summaries()) == 6  # each file counted by exactly one run
    assert cloud.names("landing/things/") == []


def test_a_poison_file_the_table_rejects_is_quarantined_and_the_rest_commits(cloud):
    cloud.write("good.parquet", good_rows(1, 5))
    poison = cloud.write("poison.parquet", good_rows(100, 5))
    generation = cloud.gcs.client().bucket(cloud.bucket).get_blob(poison.split("/", 3)[3]).generation
    cloud.bq.poison.add(f"gs://{cloud.bucket}/curated/things/poison.{generation}.parquet")
    for _ in range(3):
        run(cloud.args(max_file_attempts="2"))
    assert [s["outcome"] for s in cloud.summaries()] == ["failed", "failed", "partial"]
    assert_each_once(cloud.table_ids(), range(1, 6))
    assert any(name.endswith(".rejected.parquet") for name in cloud.names("quarantine/things/"))
    assert cloud.names("landing/things/") == []  # the poison file too: quarantined, committed, archived
    assert len(cloud.bq.jobs) == 3  # two failed batches and one good: one job per run


def test_a_run_lists_only_the_landing_folder_however_much_history_is_archived(cloud):
    bucket = cloud.gcs.client().bucket(cloud.bucket)
    for i in range(300):  # history from earlier runs
        bucket.blob(f"landing/_archive/things/old/f{i}.1.parquet").upload_from_string(b"x")
    cloud.write("new.parquet", good_rows(1, 2))
    listed = []
    real_list = GcsObjectStore.list

    def recording_list(self, prefix):
        refs = real_list(self, prefix)
        listed.append((prefix, len(refs)))
        return refs

    with mock.patch.object(GcsObjectStore, "list", recording_list):
        run(cloud.args())
    assert listed == [(f"gs://{cloud.bucket}/landing/things/", 1)]
    assert counts(cloud.summaries()[-1]) == (1, 2, 0)
