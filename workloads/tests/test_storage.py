"""Storage, checkpoint and table semantics that the delivery guarantee rests on."""

from __future__ import annotations

import os
import threading
from unittest import mock

import pytest
from google.api_core import exceptions as gexc

from workloads.etl import checkpoint
from workloads.etl.storage import GcsObjectStore, LocalObjectStore, ObjectChanged, ObjectRef, PreconditionFailed
from workloads.etl.table import BigQueryTable, LoadFailed, LocalJsonlTable

# --- local object store -------------------------------------------------------------------


def test_local_compare_and_swap(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "ctl" / "cp.json")
    assert store.read(uri) == (None, 0)
    g1 = store.write_if_generation_match(uri, b"one", 0)
    with pytest.raises(PreconditionFailed):
        store.write_if_generation_match(uri, b"again", 0)  # 0 means "must not exist"
    g2 = store.write_if_generation_match(uri, b"two", g1)
    assert g2 > g1
    with pytest.raises(PreconditionFailed):
        store.write_if_generation_match(uri, b"stale", g1)
    assert store.read(uri) == (b"two", g2)


def test_local_generations_never_repeat_even_with_a_frozen_clock(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "cp.json")
    generation = store.write_if_generation_match(uri, b"0", 0)
    with mock.patch("os.replace", side_effect=lambda src, dst: (os.rename(src, dst), os.utime(dst, ns=(generation, generation)))):
        assert store.write_if_generation_match(uri, b"1", generation) == generation + 1


def test_local_download_pins_the_generation(tmp_path):
    store = LocalObjectStore()
    path = tmp_path / "land" / "a.parquet"
    path.parent.mkdir()
    path.write_bytes(b"v1")
    (ref,) = store.list(str(tmp_path / "land") + "/")
    store.download(ref, str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_bytes() == b"v1"
    os.utime(path, ns=(ref.generation + 5, ref.generation + 5))
    with pytest.raises(ObjectChanged):
        store.download(ref, str(tmp_path / "copy"))
    path.unlink()
    with pytest.raises(ObjectChanged):
        store.download(ref, str(tmp_path / "copy"))


# --- GCS object store (client mocked) -----------------------------------------------------


def gcs_store():
    store = GcsObjectStore()
    store._client = mock.MagicMock()
    return store, store._client.bucket.return_value.blob.return_value


def test_gcs_checkpoint_write_uses_the_generation_precondition():
    store, blob = gcs_store()
    blob.generation = 43
    assert store.write_if_generation_match("gs://ctl/checkpoints/x.json", b"{}", 42) == 43
    store._client.bucket.assert_called_with("ctl")
    store._client.bucket.return_value.blob.assert_called_with("checkpoints/x.json")
    blob.upload_from_string.assert_called_once_with(b"{}", content_type="application/json", if_generation_match=42)
    blob.upload_from_string.side_effect = gexc.PreconditionFailed("412")
    with pytest.raises(PreconditionFailed):
        store.write_if_generation_match("gs://ctl/checkpoints/x.json", b"{}", 42)


def test_gcs_read_returns_content_with_its_generation_and_zero_when_absent():
    store, blob = gcs_store()
    blob.download_as_bytes.return_value, blob.generation = b"{}", "17"
    assert store.read("gs://ctl/x.json") == (b"{}", 17)
    blob.download_as_bytes.side_effect = gexc.NotFound("404")
    assert store.read("gs://ctl/x.json") == (None, 0)


def test_gcs_list_skips_folder_placeholders_and_download_pins_generation():
    store, blob = gcs_store()
    store._client.list_blobs.return_value = [
        mock.Mock(name="a", generation=1), mock.Mock(generation=2), mock.Mock(generation=3)
    ]
    for item, name in zip(store._client.list_blobs.return_value, ["orders/", "orders/a.parquet", "orders/b/"]):
        item.name = name
    assert store.list("gs://land/orders/") == [ObjectRef("gs://land/orders/a.parquet", 2)]
    store._client.list_blobs.assert_called_once_with("land", prefix="orders/")
    store.download(ObjectRef("gs://land/orders/a.parquet", 2), "/tmp/x")
    store._client.bucket.return_value.blob.assert_called_with("orders/a.parquet", generation=2)
    blob.download_to_filename.side_effect = gexc.NotFound("gone")
    with pytest.raises(ObjectChanged):
        store.download(ObjectRef("gs://land/orders/a.parquet", 2), "/tmp/x")


# --- checkpoint ---------------------------------------------------------------------------


def outcome(uri, generation, valid=1, quarantined=0):
    return {"uri": uri, "generation": str(generation), "valid_rows": valid, "quarantined_rows": quarantined}


def test_commit_reports_each_file_version_to_exactly_one_run(tmp_path):
    store, uri = LocalObjectStore(), str(tmp_path / "cp.json")
    assert checkpoint.commit(store, uri, "p", [outcome("a", 1), outcome("b", 1)]) == [outcome("a", 1), outcome("b", 1)]
    # A concurrent run that processed a and c: only c is new.
    assert checkpoint.commit(store, uri, "p", [outcome("a", 1), outcome("c", 1)]) == [outcome("c", 1)]
    # A newer generation of a is new data; an older one never moves the entry back.
    assert checkpoint.commit(store, uri, "p", [outcome("a", 2)]) == [outcome("a", 2)]
    assert checkpoint.commit(store, uri, "p", [outcome("a", 1)]) == []
    state = checkpoint.load(store, uri, "p")
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


# --- tables -------------------------------------------------------------------------------


class FakeJob:
    def __init__(self, job_id, error=None, output_rows=3):
        self.job_id, self.error_result, self.output_rows = job_id, error, output_rows

    def result(self):
        if self.error_result:
            raise gexc.BadRequest(self.error_result["message"])
        return self


class FakeBigQuery:
    """Just enough of bigquery.Client: job IDs are unique, like the real service."""

    def __init__(self, fail=()):
        self.jobs, self.fail, self.created = {}, set(fail), []

    def get_job(self, job_id, project, location):
        assert (project, location) == ("proj", "EU")
        if job_id not in self.jobs:
            raise gexc.NotFound(job_id)
        return self.jobs[job_id]

    def load_table_from_uri(self, source, destination, job_id, project, location, job_config):
        assert destination == "proj.raw.orders" and job_config.write_disposition == "WRITE_APPEND"
        assert job_config.create_disposition == "CREATE_NEVER" and job_config.source_format == "PARQUET"
        if job_id in self.jobs:
            raise gexc.Conflict(job_id)
        self.created.append((job_id, source))
        self.jobs[job_id] = FakeJob(job_id, {"message": "boom"} if job_id in self.fail else None)
        return self.jobs[job_id]


def bq_table(client):
    table = BigQueryTable("proj:raw.orders")
    table._client, table._location = client, "EU"
    return table


def test_bigquery_load_is_applied_once_per_key():
    client = FakeBigQuery()
    table = bq_table(client)
    assert table.load("gs://cur/a.parquet", "etl_orders_k") is True
    assert table.load("gs://cur/a.parquet", "etl_orders_k") is False  # a rerun finds the job done
    assert client.created == [("etl_orders_k_0", "gs://cur/a.parquet")]


def test_bigquery_failed_attempt_raises_and_the_retry_uses_the_next_job_id():
    client = FakeBigQuery(fail={"etl_orders_k_0"})
    table = bq_table(client)
    with pytest.raises(LoadFailed, match="etl_orders_k_0"):
        table.load("gs://cur/a.parquet", "etl_orders_k")
    assert table.load("gs://cur/a.parquet", "etl_orders_k") is True
    assert [job_id for job_id, _ in client.created] == ["etl_orders_k_0", "etl_orders_k_1"]
    assert table.load("gs://cur/a.parquet", "etl_orders_k") is False


def test_bigquery_job_created_concurrently_is_awaited_not_duplicated():
    client = FakeBigQuery()
    table = bq_table(client)
    real_get = client.get_job
    calls = []

    def get_job_racing(job_id, project, location):
        if not calls:  # another worker creates the job right after our lookup
            calls.append(job_id)
            client.jobs[job_id] = FakeJob(job_id)
            raise gexc.NotFound(job_id)
        return real_get(job_id, project, location)

    client.get_job = get_job_racing
    assert table.load("gs://cur/a.parquet", "etl_orders_k") is False
    assert client.created == []


def test_bigquery_table_spec_is_checked():
    with pytest.raises(ValueError, match="project:dataset.table"):
        BigQueryTable("proj.raw.orders")
    assert (BigQueryTable("my-proj-1:raw_zone.orders_v2").project) == "my-proj-1"


def test_local_table_applies_a_key_once(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "c.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), source)
    table = LocalJsonlTable(str(tmp_path / "t"))
    assert table.load(str(source), "k1") is True
    assert table.load(str(source), "k1") is False
    assert table.load(str(source), "k2") is True
    assert [row["x"] for row in table.rows()] == [1, 2, 1, 2]
