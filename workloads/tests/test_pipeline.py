"""End-to-end runs of the production pipeline on DirectRunner against local stand-ins."""

from __future__ import annotations

import collections
import json
import os
from unittest import mock

import pytest

from workloads.etl import pipeline
from workloads.etl.pipeline import EtlConfig, is_landing_file, run
from workloads.etl.storage import LocalObjectStore
from workloads.etl.table import LocalJsonlTable
from workloads.launcher.launch_request import is_landing_object

from .conftest import good_rows

COUNTS = ("processed_files", "valid_rows", "quarantined_rows")


def counts(summary):
    return tuple(summary[key] for key in COUNTS)


def bad_rows():
    rows = good_rows(1000, 4)
    rows[0]["score"] = 150.0  # above max
    rows[1]["name"] = None  # required
    rows[2]["id"] = 0  # below min
    rows[2]["score"] = -1.0  # and below min: two reasons
    return rows  # rows[3] is valid


def assert_each_once(ids, expected):
    duplicates = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert not duplicates, f"double-loaded ids: {duplicates}"
    assert sorted(ids) == sorted(expected)


def test_two_runs_load_valid_rows_once_and_the_second_processes_nothing(project):
    project.write("a.parquet", good_rows(1, 20))
    project.write("sub/dir/b.parquet", good_rows(21, 10) + bad_rows())
    (project.landing / "notes.txt").write_text("ignored")
    (project.landing / "sub" / "_SUCCESS").write_text("")

    run(project.args())
    run(project.args())

    first, second = project.summaries()
    assert counts(first) == (2, 31, 3)
    assert counts(second) == (0, 0, 0)
    assert first["event"] == "etl_run_summary" and first["pipeline"] == "things"
    assert_each_once(project.table_ids(), list(range(1, 31)) + [1003])
    assert set(project.checkpoint()["files"]) == {str(project.landing / "a.parquet"), str(project.landing / "sub/dir/b.parquet")}

    curated = sorted(p.relative_to(project.root) for p in (project.root / "curated").rglob("*.parquet"))
    assert [str(p.parent) for p in curated] == ["curated/things", "curated/things/sub/dir"]
    (quarantine_file,) = (project.root / "quarantine").rglob("*.jsonl")
    quarantined = [json.loads(line) for line in quarantine_file.read_text().splitlines()]
    assert [q["id"] for q in quarantined] == [1000, 1001, 0]
    assert quarantined[0]["_error"] == "score: 150.0 is above max 100"
    assert quarantined[1]["_error"] == "name: required value is missing"
    assert quarantined[2]["_error"] == "id: 0 is below min 1; score: -1.0 is below min 0"
    assert quarantined[2]["_row_number"] == 12 and quarantined[2]["_source_file"].endswith("sub/dir/b.parquet")


def test_crash_between_writes_and_checkpoint_skips_nothing_and_loads_nothing_twice(project):
    project.write("a.parquet", good_rows(1, 5))
    project.write("b.parquet", good_rows(6, 5) + bad_rows())
    project.write("c.parquet", good_rows(11, 5))

    # The crash: every write for every file succeeded, then the checkpoint advance fails.
    with mock.patch.object(LocalObjectStore, "write_if_generation_match", side_effect=RuntimeError("worker lost")):
        with pytest.raises(Exception, match="worker lost"):
            run(project.args())
    assert_each_once(project.table_ids(), list(range(1, 16)) + [1003])  # the loads did happen
    assert project.checkpoint() is None
    assert project.summaries() == [] and project.mails() == []  # nothing reported for a failed run

    run(project.args())  # the rerun finds all three files pending...
    assert counts(project.summaries()[-1]) == (3, 16, 3)
    assert_each_once(project.table_ids(), list(range(1, 16)) + [1003])  # ...and loads none again
    assert len(project.checkpoint()["files"]) == 3
    assert len(project.mails()) == 1

    run(project.args())
    assert counts(project.summaries()[-1]) == (0, 0, 0)
    assert len(project.mails()) == 1


def test_crash_in_the_middle_of_the_loads_recovers_on_rerun(project):
    for i, name in enumerate(["a", "b", "c", "d"]):
        project.write(f"{name}.parquet", good_rows(1 + 10 * i, 10))
    real_load = LocalJsonlTable.load
    failed = []

    def load_failing_once(self, source_uri, load_key):
        if "/c." in source_uri and not failed:
            failed.append(source_uri)
            raise RuntimeError("BigQuery unavailable")
        return real_load(self, source_uri, load_key)

    with mock.patch.object(LocalJsonlTable, "load", load_failing_once):
        with pytest.raises(Exception, match="BigQuery unavailable"):
            run(project.args())
        loaded_before_crash = project.table_ids()
        assert project.checkpoint() is None
        run(project.args())

    assert failed and 0 < len(loaded_before_crash) < 40
    assert counts(project.summaries()[-1]) == (4, 40, 0)
    assert_each_once(project.table_ids(), range(1, 41))


def test_new_and_overwritten_files_are_loaded_by_the_next_run(project):
    a = project.write("a.parquet", good_rows(1, 3))
    run(project.args())
    project.write("b.parquet", good_rows(4, 3))
    project.write("a.parquet", good_rows(100, 2))  # replaced in place: a new generation, new data
    os.utime(a, ns=(a.stat().st_mtime_ns + 1000, a.stat().st_mtime_ns + 1000))  # however coarse the clock

    run(project.args())

    assert [counts(s) for s in project.summaries()] == [(1, 3, 0), (2, 5, 0)]
    assert_each_once(project.table_ids(), [1, 2, 3, 4, 5, 6, 100, 101])


def test_unreadable_file_is_set_aside_committed_and_alerted(project):
    project.write("good.parquet", good_rows(1, 2))
    (project.landing / "broken.parquet").write_bytes(b"this is not parquet")

    run(project.args())
    run(project.args())

    first, second = project.summaries()
    assert counts(first) == (2, 2, 0) and first["rejected_files"] == 1
    assert counts(second) == (0, 0, 0)
    assert list((project.root / "quarantine").rglob("broken.*.rejected.parquet"))
    (mail,) = project.mails()
    assert "1 file(s) rejected" in mail["json"]["subject"]
    assert "unreadable Parquet" in mail["json"]["content"][0]["value"]


def test_truncated_file_is_rejected_but_our_own_write_errors_fail_the_run(project):
    whole = project.write("t.parquet", good_rows(1, 50)).read_bytes()
    (project.landing / "t.parquet").write_bytes(whole[: len(whole) // 2])
    run(project.args())
    assert project.summaries()[-1]["rejected_files"] == 1

    import pyarrow as pa

    project.write("u.parquet", good_rows(100, 2))
    broken_schema = pa.schema([("id", pa.struct([("x", pa.int64())]))])  # cannot hold an int: ArrowTypeError
    with mock.patch.object(pipeline, "arrow_schema", return_value=broken_schema):
        with pytest.raises(Exception, match="struct"):
            run(project.args())
    assert str(project.landing / "u.parquet") not in project.checkpoint()["files"]  # not set aside: retried


def test_file_missing_a_required_column_quarantines_its_rows(project):
    project.write("a.parquet", [{"id": 1, "score": 1.0}, {"id": 2, "score": 2.0}], schema=None)
    run(project.args())
    assert counts(project.summaries()[-1]) == (1, 0, 2)
    assert project.table_ids() == []
    assert not list((project.root / "curated").rglob("*.parquet"))  # no empty curated files


def test_alert_goes_through_sendgrid_once_and_only_when_rows_were_quarantined(project):
    project.write("a.parquet", bad_rows())
    response = mock.Mock(status_code=202, text="")
    with mock.patch("requests.post", return_value=response) as post:
        run(project.args(outbox=False))
        run(project.args(outbox=False))  # nothing new: no mail
    post.assert_called_once()
    (url,), kwargs = post.call_args
    assert url == "https://api.sendgrid.com/v3/mail/send"
    assert kwargs["headers"]["Authorization"] == "Bearer SG.test-key"  # read from the secret stand-in
    body = kwargs["json"]
    assert body["personalizations"] == [{"to": [{"email": "a@example.com"}, {"email": "b@example.com"}]}]
    assert body["from"] == {"email": "etl@example.com"}
    assert body["subject"] == "[etl] things: 3 row(s) quarantined"


def test_no_alert_for_a_clean_run(project):
    project.write("a.parquet", good_rows(1, 3))
    with mock.patch("requests.post") as post:
        run(project.args(outbox=False))
    post.assert_not_called()
    assert counts(project.summaries()[-1]) == (1, 3, 0)


def test_a_failing_alert_does_not_fail_the_committed_run(project):
    project.write("a.parquet", bad_rows())
    with mock.patch("requests.post", return_value=mock.Mock(status_code=401, text="bad key")):
        run(project.args(outbox=False))
    assert counts(project.summaries()[-1]) == (1, 1, 3)
    assert project.checkpoint() is not None


def test_bad_schema_stops_the_run_before_any_work(project):
    project.write("a.parquet", good_rows(1, 1))
    bad = json.dumps([{"name": "id", "type": "INT", "mode": "REQUIRED"}])
    with pytest.raises(ValueError, match="type 'INT'"):
        run(project.args(schema=bad))
    assert project.summaries() == [] and project.checkpoint() is None


def test_on_dataflow_every_location_must_be_cloud(project):
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(project.args(runner="DataflowRunner"))
    with pytest.raises(ValueError, match="must be gs://"):
        EtlConfig.from_options(options)


def test_production_parameters_select_the_gcp_implementations():
    from apache_beam.options.pipeline_options import PipelineOptions

    from workloads.etl.reporting import CloudLoggingReporter
    from workloads.etl.storage import GcsObjectStore, store_for
    from workloads.etl.table import BigQueryTable, table_for

    args = [
        "--runner=DataflowRunner", "--pipeline=orders", "--landing_prefix=gs://land/orders/",
        "--schema=" + json.dumps([{"name": "x", "type": "STRING", "mode": "NULLABLE"}]),
        "--output_table=my-proj:raw.orders", "--curated_prefix=gs://cur/orders/",
        "--quarantine_prefix=gs://quar/orders/", "--checkpoint_uri=gs://ctl/checkpoints/orders.json",
        "--alert_secret=projects/p/secrets/sendgrid/versions/latest", "--alert_to=x@example.com",
        "--alert_from=etl@example.com",
    ]
    config = EtlConfig.from_options(PipelineOptions(args))
    assert isinstance(store_for(config.landing_prefix), GcsObjectStore)
    assert isinstance(table_for(config.output_table), BigQueryTable)
    assert config.reporter() == CloudLoggingReporter("my-proj")
    assert config.mailer().post is not None and config.mailer().secret_name.startswith("projects/")
    from workloads.etl.storage import ObjectRef

    ref = ObjectRef("gs://land/orders/2024/x.parquet", 123)
    assert config.curated_uri(ref) == "gs://cur/orders/2024/x.123.parquet"
    assert config.quarantine_uri(ref) == "gs://quar/orders/2024/x.123.jsonl"
    assert config.load_key(ref) == config.load_key(ObjectRef(ref.uri, 123)) != config.load_key(ObjectRef(ref.uri, 124))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("a.parquet", True), ("2024/01/a.PARQUET", True), ("a.parquet/", False), ("", False),
        ("a.csv", False), ("_SUCCESS", False), ("_temporary/0/a.parquet", False), (".a.parquet", False),
        ("dir/.hidden/a.parquet", False), ("a//b.parquet", False),
    ],
)
def test_etl_and_launcher_agree_on_what_a_data_file_is(name, expected):
    assert is_landing_file(name) is expected
    assert is_landing_object(name) is expected


def test_summary_log_entry_stays_bounded(project, monkeypatch):
    monkeypatch.setattr(pipeline, "SUMMARY_FILES_LIMIT", 2)
    for i in range(3):
        project.write(f"f{i}.parquet", good_rows(1 + i, 1))
    run(project.args())
    logged = project.summaries()[-1]
    assert logged["processed_files"] == 3 and len(logged["files"]) == 2 and logged["files_truncated"]
