"""BigQueryTable through the real google-cloud-bigquery client against the load-job stand-in."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workloads.etl.table import BigQueryTable, LoadResult, LocalJsonlTable


def put_parquet(cloud, name: str, ids: list[int]) -> str:
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), sink)
    cloud.gcs.client().bucket(cloud.bucket).blob(name).upload_from_string(sink.getvalue())
    return f"gs://{cloud.bucket}/{name}"


def test_one_load_job_appends_every_file_with_the_requested_id_and_settings(cloud):
    uris = [put_parquet(cloud, "cur/a.parquet", [1, 2]), put_parquet(cloud, "cur/b.parquet", [3])]
    result = BigQueryTable("proj:raw.things").load(uris, "etl_things_job1")
    assert result == LoadResult("etl_things_job1", True, 3)
    (job,) = cloud.bq.load_jobs()
    assert job["jobReference"]["jobId"] == "etl_things_job1" and job["jobReference"]["location"] == "EU"
    assert job["configuration"]["load"] == {
        "sourceUris": uris, "sourceFormat": "PARQUET", "writeDisposition": "WRITE_APPEND", "createDisposition": "CREATE_NEVER",
        "destinationTable": {"projectId": "proj", "datasetId": "raw", "tableId": "things"},
    }
    assert cloud.table_ids() == [1, 2, 3]


def test_a_repeated_load_finds_the_job_and_appends_nothing(cloud):
    uris = [put_parquet(cloud, "cur/a.parquet", [1])]
    table = BigQueryTable("proj:raw.things")
    assert table.load(uris, "etl_things_job1").ok
    assert table.load(uris, "etl_things_job1") == LoadResult("etl_things_job1", True, 1)
    assert len(cloud.bq.load_jobs()) == 1 and cloud.table_ids() == [1]
    assert BigQueryTable("proj:raw.things").find("etl_things_job1").ok
    assert BigQueryTable("proj:raw.things").find("etl_things_never") is None


def test_409_on_create_resolves_to_the_existing_job_not_none(cloud):
    """The race: another attempt created the job between our lookup and our insert."""
    uris = [put_parquet(cloud, "cur/a.parquet", [1])]
    table = BigQueryTable("proj:raw.things")
    table.load(uris, "etl_things_job1")
    job = table._start_job(uris, "etl_things_job1")  # insert answers 409 ALREADY_EXISTS
    assert job is not None and job.job_id == "etl_things_job1" and job.error_result is None
    assert [m for m, path, _ in cloud.bq.requests if m == "POST"] == ["POST", "POST"]
    assert cloud.table_ids() == [1]


def test_a_failed_job_names_the_file_it_blames(cloud):
    good, bad = put_parquet(cloud, "cur/a.parquet", [1]), put_parquet(cloud, "cur/b.parquet", [2])
    cloud.bq.poison.add(bad)
    result = BigQueryTable("proj:raw.things").load([good, bad], "etl_things_job1")
    assert not result.ok and result.output_rows == 0
    assert result.sources_blamed([good, bad]) == [bad]
    assert "invalid" in result.error_text
    assert cloud.table_ids() == []  # a load job is all or nothing


def test_transient_503_on_insert_is_retried_by_the_client(cloud):
    uris = [put_parquet(cloud, "cur/a.parquet", [1])]
    cloud.bq.unavailable = 1
    assert BigQueryTable("proj:raw.things").load(uris, "etl_things_job1").ok
    assert cloud.table_ids() == [1]


def test_table_spec_is_checked():
    with pytest.raises(ValueError, match="project:dataset.table"):
        BigQueryTable("proj.raw.orders")
    assert BigQueryTable("my-proj-1:raw_zone.orders_v2").project == "my-proj-1"


def test_local_table_runs_a_job_once_and_records_failures(tmp_path):
    source = tmp_path / "c.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), source)
    table = LocalJsonlTable(str(tmp_path / "t"))
    assert table.load([str(source)], "k1") == LoadResult("k1", True, 2)
    assert table.load([str(source)], "k1") == LoadResult("k1", True, 2)
    missing = str(tmp_path / "missing.parquet")
    failed = table.load([str(source), missing], "k2")
    assert not failed.ok and failed.sources_blamed([str(source), missing]) == [missing]
    assert table.find("k2") == failed and table.find("k3") is None
    assert [row["x"] for row in table.rows()] == [1, 2]
    assert table.load_jobs() == ["k1", "k2"]
