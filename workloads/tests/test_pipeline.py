"""End-to-end runs of the production pipeline on DirectRunner against local stand-ins."""

from __future__ import annotations

import collections
import json
import os
import re
from unittest import mock

import pytest

from workloads.etl import pipeline
from workloads.etl.pipeline import EtlConfig, is_landing_file, run
from workloads.etl.storage import LocalObjectStore
from workloads.etl.table import LocalJsonlTable
from workloads.launcher.launch_request import is_landing_object, parse_time

from .conftest import good_rows, http_response

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


def test_crash_between_load_and_commit_skips_nothing_and_loads_nothing_twice(project):
    project.write("a.parquet", good_rows(1, 5))
    project.write("b.parquet", good_rows(6, 5) + bad_rows())
    project.write("c.parquet", good_rows(11, 5))

    # The crash: the run recorded its batch and the load job ran, then the worker died.
    with mock.patch.object(pipeline, "resolve_recorded_load", side_effect=RuntimeError("worker lost")):
        with pytest.raises(Exception, match="worker lost"):
            run(project.args())
    assert_each_once(project.table_ids(), list(range(1, 16)) + [1003])  # the load did happen
    assert list(project.checkpoint()["loads"].values())[0]["files"]  # and its record is in the state
    assert project.checkpoint()["files"] == {}
    assert project.summaries() == [] and project.mails() == []  # nothing reported for a failed run

    run(project.args())  # the rerun settles the recorded batch: its job is done, so it commits...
    assert counts(project.summaries()[-1]) == (3, 16, 3)
    assert_each_once(project.table_ids(), list(range(1, 16)) + [1003])  # ...and loads none again
    assert len(project.checkpoint()["files"]) == 3 and project.checkpoint()["loads"] == {}
    assert len(project.mails()) == 1

    run(project.args())
    assert counts(project.summaries()[-1]) == (0, 0, 0)
    assert len(project.mails()) == 1


def test_crash_before_the_load_job_is_created_recovers_on_rerun(project):
    for i, name in enumerate(["a", "b", "c", "d"]):
        project.write(f"{name}.parquet", good_rows(1 + 10 * i, 10))
    with mock.patch.object(LocalJsonlTable, "load", side_effect=RuntimeError("BigQuery unavailable")):
        with pytest.raises(Exception, match="BigQuery unavailable"):
            run(project.args())
    assert project.table_ids() == [] and project.checkpoint()["loads"]  # recorded, never created
    run(project.args())  # creates the recorded job under its recorded id, then commits
    assert counts(project.summaries()[-1]) == (4, 40, 0)
    assert_each_once(project.table_ids(), range(1, 41))
    assert len(LocalJsonlTable(str(project.root / "bq" / project.pipeline)).load_jobs()) == 1


def test_new_and_overwritten_files_are_loaded_by_the_next_run(project):
    a = project.write("a.parquet", good_rows(1, 3))
    run(project.args())
    project.write("b.parquet", good_rows(4, 3))
    project.write("a.parquet", good_rows(100, 2))  # replaced in place: a new generation, new data
    os.utime(a, ns=(a.stat().st_mtime_ns + 1000, a.stat().st_mtime_ns + 1000))  # however coarse the clock

    run(project.args())

    assert [counts(s) for s in project.summaries()] == [(1, 3, 0), (2, 5, 0)]
    assert_each_once(project.table_ids(), [1, 2, 3, 4, 5, 6, 100, 101])


def test_unreadable_file_is_retried_then_quarantined_whole_and_the_rest_commits(project):
    project.write("good.parquet", good_rows(1, 2))
    (project.landing / "broken.parquet").write_bytes(b"this is not parquet")

    for _ in range(4):
        run(project.args(max_file_attempts="3"))

    first, second, third, fourth = project.summaries()
    assert counts(first) == (1, 2, 0) and first["outcome"] == "partial" and first["backlog_files"] == 1
    assert counts(second) == (0, 0, 0) and second["backlog_files"] == 1 and second["rejected_files"] == 0
    assert third["rejected_files"] == 1 and third["outcome"] == "partial" and third["backlog_files"] == 0
    assert counts(fourth) == (0, 0, 0) and fourth["outcome"] == "succeeded"
    (rejected,) = (project.root / "quarantine").rglob("broken.*.rejected.parquet")
    assert rejected.read_bytes() == b"this is not parquet"
    (error,) = (project.root / "quarantine").rglob("broken.*.error.json")
    assert json.loads(error.read_text())["attempts"] == 3 and "unreadable Parquet" in json.loads(error.read_text())["error"]
    (mail,) = project.mails()
    assert "1 file(s) rejected" in mail["json"]["subject"]
    assert project.checkpoint()["attempts"] == {}


def plan_and_process(cfg):
    """PlanRun and ProcessFile of one run, called directly: (plan, outcomes) as CommitRun receives them."""
    from apache_beam.pvalue import TaggedOutput

    planned = list(pipeline.PlanRun(cfg).process(None))
    (plan,) = [o.value for o in planned if isinstance(o, TaggedOutput)]
    refs = [o for o in planned if not isinstance(o, TaggedOutput)]
    return plan, [outcome for ref in refs for outcome in pipeline.ProcessFile(cfg).process(ref, plan)]


def test_a_retried_commit_step_counts_a_failed_file_once(project):
    """The commit step's state update counted the unreadable file, then the step failed (archive
    raised, the worker died); Dataflow retries the bundle with the same run id and outcomes. The
    retry must not count the file again, or it is quarantined after fewer real attempts than allowed."""
    from apache_beam.options.pipeline_options import PipelineOptions

    project.write("good.parquet", good_rows(1, 2))
    (project.landing / "broken.parquet").write_bytes(b"this is not parquet")
    args = project.args(max_file_attempts="3")
    cfg = EtlConfig.from_options(PipelineOptions(args))
    plan, outcomes = plan_and_process(cfg)
    commit = pipeline.CommitRun(cfg)
    with mock.patch.object(pipeline, "archive", side_effect=RuntimeError("worker lost")):
        with pytest.raises(RuntimeError, match="worker lost"):
            list(commit.process(outcomes, plan))
    (retried,) = commit.process(outcomes, plan)  # the retried bundle: same run, same outcomes
    assert retried["processed_files"] == 0 and retried["backlog_files"] == 1  # committed by the first attempt
    broken = str(project.landing / "broken.parquet")
    assert project.checkpoint()["attempts"][broken]["count"] == 1

    run(args)  # the second real attempt
    assert project.summaries()[-1]["rejected_files"] == 0 and project.checkpoint()["attempts"][broken]["count"] == 2
    run(args)  # the third: quarantined whole
    assert project.summaries()[-1]["rejected_files"] == 1
    (error,) = (project.root / "quarantine").rglob("broken.*.error.json")
    assert json.loads(error.read_text())["attempts"] == 3


def test_with_one_attempt_an_unreadable_file_is_quarantined_at_once(project):
    project.write("good.parquet", good_rows(1, 2))
    (project.landing / "broken.parquet").write_bytes(b"this is not parquet")
    run(project.args(max_file_attempts="1"))
    (summary,) = project.summaries()
    assert counts(summary) == (2, 2, 0) and summary["rejected_files"] == 1


def test_truncated_file_is_rejected_but_our_own_write_errors_fail_the_run(project):
    whole = project.write("t.parquet", good_rows(1, 50)).read_bytes()
    (project.landing / "t.parquet").write_bytes(whole[: len(whole) // 2])
    run(project.args(max_file_attempts="1"))
    assert project.summaries()[-1]["rejected_files"] == 1

    import pyarrow as pa

    project.write("u.parquet", good_rows(100, 2))
    broken_schema = pa.schema([("id", pa.struct([("x", pa.int64())]))])  # cannot hold an int: ArrowTypeError
    with mock.patch.object(pipeline, "arrow_schema", return_value=broken_schema):
        with pytest.raises(Exception, match="struct|Struct"):
            run(project.args())
    assert str(project.landing / "u.parquet") not in project.checkpoint()["files"]  # not set aside: retried
    assert project.checkpoint()["attempts"] == {}  # and not counted against the file


def test_file_missing_a_required_column_quarantines_its_rows(project):
    project.write("a.parquet", [{"id": 1, "score": 1.0}, {"id": 2, "score": 2.0}], schema=None)
    run(project.args())
    assert counts(project.summaries()[-1]) == (1, 0, 2)
    assert project.table_ids() == []
    assert not list((project.root / "curated").rglob("*.parquet"))  # no empty curated files


def test_all_invalid_file_quarantine_holds_every_row_with_its_reason(project):
    rows = [{**r, "name": None} for r in good_rows(1, 25)]
    project.write("bad.parquet", rows)
    run(project.args())
    summary = project.summaries()[-1]
    assert counts(summary) == (1, 0, 25) and summary["load_job_id"] is None  # nothing to load: no job
    (quarantine_file,) = (project.root / "quarantine").rglob("*.jsonl")
    quarantined = [json.loads(line) for line in quarantine_file.read_text().splitlines()]
    assert [q["id"] for q in quarantined] == list(range(1, 26))
    assert all(q["_error"] == "name: required value is missing" for q in quarantined)
    assert [q["_row_number"] for q in quarantined] == list(range(25))
    assert summary["files"][0]["reasons"] == {"name: missing_required": 25}


def test_alert_goes_through_sendgrid_once_and_only_when_rows_were_quarantined(project):
    project.write("a.parquet", bad_rows())
    with mock.patch("requests.post", autospec=True, return_value=http_response(202)) as post:
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
    with mock.patch("requests.post", autospec=True) as post:
        run(project.args(outbox=False))
    post.assert_not_called()
    assert counts(project.summaries()[-1]) == (1, 3, 0)


def test_a_failing_alert_does_not_fail_the_committed_run(project):
    project.write("a.parquet", bad_rows())
    with mock.patch("requests.post", autospec=True, return_value=http_response(401, "bad key")):
        run(project.args(outbox=False))
    assert counts(project.summaries()[-1]) == (1, 1, 3)
    assert project.checkpoint()["files"]


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
    files = [{"uri": ref.uri, "generation": "123"}]
    assert config.load_job_id("run1", files) == config.load_job_id("run1", list(files))
    assert config.load_job_id("run1", files) != config.load_job_id("run2", files)
    assert config.load_job_id("run1", files) != config.load_job_id("run1", [{"uri": ref.uri, "generation": "124"}])
    assert re.fullmatch(r"etl_orders_[0-9a-f]{40}", config.load_job_id("run1", files))  # a valid BigQuery job id


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


# --- bounded runs, follow-ups, C1 events ----------------------------------------------------


def followups(project):
    from workloads.etl.followups import OutboxFollowUps

    return OutboxFollowUps(str(project.root / "followups")).tasks()


def test_a_backlog_drains_in_bounded_runs_each_asking_for_one_follow_up(project):
    for i in range(5):
        project.write(f"f{i}.parquet", good_rows(1 + 10 * i, 10))
    args = project.args(max_files_per_run="2", followup_outbox=str(project.root / "followups"))
    runs = 0
    while True:
        run(args)
        runs += 1
        if project.summaries()[-1]["backlog_files"] == 0:
            break
    assert runs == 3
    assert [(s["processed_files"], s["backlog_files"], s["outcome"]) for s in project.summaries()] == [
        (2, 3, "partial"), (2, 1, "partial"), (1, 0, "succeeded")]
    assert_each_once(project.table_ids(), range(1, 51))
    assert len(LocalJsonlTable(str(project.root / "bq" / project.pipeline)).load_jobs()) == 3  # one load job per run
    tasks = followups(project)
    assert len(tasks) == 2  # one per run that left work, none for the last
    from workloads.launcher.launch_request import follow_up_task_id

    # Named after the run (the Dataflow job id on Dataflow): the very task the launcher creates
    # for files landing during that run, so the two reasons make one follow-up.
    first_run = project.summaries()[0]["run_id"]
    assert any(t["task"]["name"].endswith("/" + follow_up_task_id("things", first_run)) for t in tasks)
    body = json.loads(__import__("base64").b64decode(tasks[0]["task"]["httpRequest"]["body"]))
    assert body == {"pipeline": "things", "reason": "backlog"}


def test_the_byte_bound_cuts_the_batch_but_a_single_large_file_still_goes(project):
    for i in range(3):
        project.write(f"f{i}.parquet", good_rows(1 + 100 * i, 100))
    run(project.args(max_bytes_per_run="1"))  # 1 MiB: bigger than one file of these? each is a few KiB
    assert project.summaries()[-1]["processed_files"] == 3
    big = project.root / "landing" / project.pipeline / "big.parquet"
    big.write_bytes((project.landing / "f0.parquet").read_bytes())
    os.truncate(big, 2 << 20)  # 2 MiB (not valid Parquet, but its size is what the bound sees)
    project.write("small.parquet", good_rows(1000, 1))
    run(project.args(max_bytes_per_run="1", max_file_attempts="1"))
    assert project.summaries()[-1]["processed_files"] == 1 and project.summaries()[-1]["backlog_files"] == 1


def test_each_committed_file_gets_one_etl_file_loaded_event(project):
    from workloads.etl.reporting import read_run_log

    project.write("a.parquet", good_rows(1, 3))
    project.write("b.parquet", [{**r, "name": None} for r in good_rows(10, 2)])
    run(project.args())
    events = read_run_log(str(project.run_log), event="etl_file_loaded")
    summary = project.summaries()[-1]
    assert sorted((e["file"].rsplit("/", 1)[-1], e["rows"]) for e in events) == [("a.parquet", 3), ("b.parquet", 0)]
    for e in events:
        assert set(e) == {"event", "pipeline", "run_id", "file", "generation", "rows", "landed_at", "loaded_at",
                          "arrival_to_load_seconds"}
        assert e["run_id"] == summary["run_id"] and e["pipeline"] == "things"
        assert e["landed_at"].endswith("Z") and e["loaded_at"].endswith("Z") and e["arrival_to_load_seconds"] >= 0
    assert summary["outcome"] == "succeeded" and summary["loaded_files"] == 1 and summary["loaded_rows"] == 3
    run(project.args())
    assert project.summaries()[-1]["run_id"] != summary["run_id"]  # unique per run


def test_a_superseded_file_is_neither_committed_nor_counted(project):
    a = project.write("a.parquet", good_rows(1, 3))
    real_download = LocalObjectStore.download

    def replaced_meanwhile(self, ref, dest):
        project.write("a.parquet", good_rows(100, 2))  # a new version lands between listing and download
        os.utime(a, ns=(ref.generation + 1000, ref.generation + 1000))
        return real_download(self, ref, dest)

    with mock.patch.object(LocalObjectStore, "download", replaced_meanwhile):
        run(project.args())
    summary = project.summaries()[-1]
    assert counts(summary) == (0, 0, 0) and summary["skipped_files"] == 1 and summary["backlog_files"] == 0
    assert project.checkpoint() is None and project.table_ids() == []  # nothing recorded at all
    assert read_events(project) == []
    run(project.args())  # the new version is loaded by the next run
    assert counts(project.summaries()[-1]) == (1, 2, 0) and sorted(project.table_ids()) == [100, 101]


def read_events(project):
    from workloads.etl.reporting import read_run_log

    return read_run_log(str(project.run_log), event="etl_file_loaded")


def test_a_load_the_table_blames_on_one_file_quarantines_that_file_after_n_attempts(project):
    project.write("good.parquet", good_rows(1, 3))
    project.write("poison.parquet", good_rows(10, 3))
    real_load = LocalJsonlTable.load

    def poisoned(self, source_uris, job_id):
        bad = [u for u in source_uris if "/poison." in u]
        if bad:
            errors = [{"reason": "invalid", "location": bad[0], "message": "Error while reading data"}]
            self._failure_path(job_id).parent.mkdir(parents=True, exist_ok=True)
            self._failure_path(job_id).write_text(json.dumps(errors))
            from workloads.etl.table import LoadResult

            return LoadResult(job_id, False, 0, tuple(errors))
        return real_load(self, source_uris, job_id)

    with mock.patch.object(LocalJsonlTable, "load", poisoned):
        outcomes = []
        for _ in range(4):
            run(project.args(max_file_attempts="2"))
            outcomes.append(project.summaries()[-1]["outcome"])
    # runs 1-2: the batch fails and the file is blamed; run 3: the file is quarantined whole, the rest loads.
    assert outcomes == ["failed", "failed", "partial", "succeeded"]
    assert sorted(project.table_ids()) == [1, 2, 3]
    third = project.summaries()[2]
    assert third["rejected_files"] == 1 and third["loaded_files"] == 1
    assert "load failed" in third["files"][[f["uri"].endswith("poison.parquet") for f in third["files"]].index(True)]["error"]
    assert project.summaries()[0]["load_error"].startswith("invalid")


def test_a_global_load_failure_blames_no_file_and_counts_no_attempt(project):
    project.write("a.parquet", good_rows(1, 3))
    from workloads.etl.table import LoadResult

    failure = LoadResult("x", False, 0, ({"reason": "accessDenied", "message": "permission denied"},))
    with mock.patch.object(LocalJsonlTable, "load", return_value=failure):
        for _ in range(3):
            run(project.args(max_file_attempts="1"))
    assert [s["outcome"] for s in project.summaries()] == ["failed"] * 3
    assert project.checkpoint()["attempts"] == {} and project.checkpoint()["loads"] == {}
    run(project.args())  # BigQuery is back: the file loads, nothing was quarantined
    assert counts(project.summaries()[-1]) == (1, 3, 0) and project.summaries()[-1]["rejected_files"] == 0


def test_a_run_whose_load_failed_asks_for_its_follow_up_when_the_budget_allows_the_next_load(project):
    """A load failure that blames no file (permissions, a deleted table) leaves the batch pending:
    the follow-up comes when the daily load budget allows the next load, not at once run after run."""
    import datetime as dt

    from workloads.etl.table import LoadResult

    project.write("a.parquet", good_rows(1, 3))
    failure = LoadResult("x", False, 0, ({"reason": "accessDenied", "message": "permission denied"},))
    args = project.args(max_loads_per_day="2", followup_outbox=str(project.root / "followups"))  # one per 12 h
    before = dt.datetime.now(dt.timezone.utc)
    with mock.patch.object(LocalJsonlTable, "load", return_value=failure):
        run(args)
    (summary,) = project.summaries()
    assert summary["outcome"] == "failed" and summary["backlog_files"] == 1
    (task,) = followups(project)
    due = parse_time(task["task"]["scheduleTime"])
    assert before + dt.timedelta(hours=12) <= due <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)
    body = json.loads(__import__("base64").b64decode(task["task"]["httpRequest"]["body"]))
    assert body == {"pipeline": "things", "reason": "deferred"}


def test_runs_closer_than_the_daily_load_budget_allows_defer_their_load(project):
    project.write("a.parquet", good_rows(1, 3))
    args = project.args(max_loads_per_day="2", followup_outbox=str(project.root / "followups"))  # one per 12 h
    run(args)
    project.write("b.parquet", good_rows(10, 3))
    run(args)
    first, second = project.summaries()
    assert first["outcome"] == "succeeded" and second["outcome"] == "partial"
    assert second["processed_files"] == 0 and second["backlog_files"] == 1 and second["deferred_until"]
    (task,) = followups(project)
    assert task["task"]["scheduleTime"].startswith(second["deferred_until"][:16])
    assert len(LocalJsonlTable(str(project.root / "bq" / project.pipeline)).load_jobs()) == 1


@pytest.mark.parametrize("value, message", [("0", "at least 1"), ("x", "integer")])
def test_bad_bounds_stop_the_run_before_any_work(project, value, message):
    with pytest.raises(ValueError, match=message):
        run(project.args(max_files_per_run=value))


def test_a_follow_up_that_cannot_be_requested_does_not_fail_the_committed_run(project, caplog):
    """The queue refusing the follow-up leaves the backlog to the schedule and the next arrival:
    the run's load is committed and the failure is logged with the run id."""
    from workloads.etl.followups import OutboxFollowUps

    for i in range(3):
        project.write(f"f{i}.parquet", good_rows(1 + 10 * i, 10))
    args = project.args(max_files_per_run="2", followup_outbox=str(project.root / "followups"))
    with mock.patch.object(OutboxFollowUps, "request", autospec=True, side_effect=RuntimeError("queue down")):
        run(args)
    summary = project.summaries()[-1]
    assert (summary["processed_files"], summary["backlog_files"], summary["outcome"]) == (2, 1, "partial")
    assert_each_once(project.table_ids(), range(1, 21))
    failed = [json.loads(r.getMessage()) for r in caplog.records if "etl_follow_up_failed" in r.getMessage()]
    assert failed == [{"event": "etl_follow_up_failed", "pipeline": "things", "run_id": summary["run_id"]}]


def test_a_summary_that_cannot_be_logged_does_not_fail_the_committed_run(project):
    from workloads.etl.reporting import JsonlFileReporter

    project.write("a.parquet", good_rows(1, 10))
    with mock.patch.object(JsonlFileReporter, "report", autospec=True, side_effect=OSError("logging down")):
        run(project.args())
    assert_each_once(project.table_ids(), range(1, 11))
    assert len(project.checkpoint()["files"]) == 1
    assert project.summaries() == []
