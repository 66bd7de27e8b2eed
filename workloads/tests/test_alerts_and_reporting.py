"""SendGrid alert, Secret Manager read and the Cloud Logging summary entry (all network mocked)."""

from __future__ import annotations

from unittest import mock

import pytest

from workloads.etl import alerts
from workloads.etl.alerts import SendGridMailer, mailer_for, read_secret, send_summary_alert, summary_mail
from workloads.etl.reporting import CloudLoggingReporter, JsonlFileReporter, read_run_log

from .conftest import http_response

SUMMARY = {
    "event": "etl_run_summary", "pipeline": "orders", "processed_files": 2, "valid_rows": 10,
    "quarantined_rows": 3, "rejected_files": 0, "skipped_files": 0,
    "files": [
        {"uri": "gs://l/orders/a.parquet", "generation": "1", "valid_rows": 5, "quarantined_rows": 3,
         "quarantine_uri": "gs://q/orders/a.1.jsonl", "reasons": {"amount: above_max": 2, "id: missing_required": 1}, "error": None},
        {"uri": "gs://l/orders/b.parquet", "generation": "7", "valid_rows": 5, "quarantined_rows": 0,
         "quarantine_uri": None, "reasons": {}, "error": None},
    ],
}


def test_secret_manager_version_is_read_with_the_client():
    from google.cloud import secretmanager

    with mock.patch.object(secretmanager, "SecretManagerServiceClient", autospec=True) as client_cls:
        client_cls.return_value.access_secret_version.return_value.payload.data = b"SG.real-key\n"
        assert read_secret("projects/p/secrets/sendgrid/versions/latest") == "SG.real-key"
    client_cls.return_value.access_secret_version.assert_called_once_with(name="projects/p/secrets/sendgrid/versions/latest")


def test_mailer_posts_the_v3_body_with_the_key_as_bearer(tmp_path):
    (tmp_path / "key").write_text("SG.k")
    post = mock.create_autospec(alerts._requests_post, return_value=http_response(202))
    SendGridMailer(str(tmp_path / "key"), "etl@example.com", ("a@example.com",), post).send("subj", "body")
    post.assert_called_once_with(
        "https://api.sendgrid.com/v3/mail/send",
        headers={"Authorization": "Bearer SG.k", "Content-Type": "application/json"},
        json={
            "personalizations": [{"to": [{"email": "a@example.com"}]}],
            "from": {"email": "etl@example.com"},
            "subject": "subj",
            "content": [{"type": "text/plain", "value": "body"}],
        },
        timeout=30,
    )


def test_mailer_raises_on_http_errors(tmp_path):
    (tmp_path / "key").write_text("SG.k")
    post = mock.create_autospec(alerts._requests_post, return_value=http_response(403, "sender not verified"))
    with pytest.raises(RuntimeError, match="403: sender not verified"):
        SendGridMailer(str(tmp_path / "key"), "etl@example.com", ("a@example.com",), post).send("s", "b")


def test_alerting_is_off_unless_secret_sender_and_recipients_are_set():
    assert mailer_for("", "f@example.com", "a@example.com") is None
    assert mailer_for("projects/p/secrets/s/versions/1", "f@example.com", " , ") is None
    mailer = mailer_for("projects/p/secrets/s/versions/1", "f@example.com", "a@example.com, b@example.com")
    assert mailer.recipients == ("a@example.com", "b@example.com") and mailer.post is alerts._requests_post


def test_summary_mail_names_files_and_counts_reasons():
    subject, text = summary_mail(SUMMARY)
    assert subject == "[etl] orders: 3 row(s) quarantined"
    assert "loaded 10 row(s) from 2 file(s)" in text
    assert "3 quarantined row(s) in gs://q/orders/a.1.jsonl" in text
    assert "2 x amount: above_max" in text and "b.parquet" not in text


def test_one_mail_only_when_something_was_quarantined():
    mailer = mock.create_autospec(SendGridMailer, instance=True)
    assert send_summary_alert(mailer, SUMMARY) is True
    assert send_summary_alert(mailer, {**SUMMARY, "quarantined_rows": 0, "rejected_files": 0}) is False
    assert send_summary_alert(mailer, {**SUMMARY, "quarantined_rows": 0, "rejected_files": 1}) is True
    assert mailer.send.call_count == 2
    assert send_summary_alert(None, SUMMARY) is False


def test_failed_send_is_logged_not_raised(caplog):
    mailer = mock.create_autospec(SendGridMailer, instance=True)
    mailer.send.side_effect = RuntimeError("SendGrid answered 500")
    assert send_summary_alert(mailer, SUMMARY) is False
    assert "etl_alert_failed" in caplog.text


FILE_EVENT = {"event": "etl_file_loaded", "pipeline": "orders", "run_id": "r1", "file": "gs://l/orders/a.parquet",
              "generation": "1", "rows": 5, "landed_at": "2026-01-01T00:00:00Z", "loaded_at": "2026-01-01T00:01:00Z",
              "arrival_to_load_seconds": 60.0}


def test_cloud_logging_entries_have_the_contract_fields_at_the_top_of_json_payload():
    from google.cloud import logging as cloud_logging

    with mock.patch.object(cloud_logging, "Client", autospec=True) as client_cls:
        CloudLoggingReporter("proj").report({**SUMMARY, "outcome": "partial"}, [FILE_EVENT] * 3)
    client_cls.assert_called_once_with(project="proj")
    client = client_cls.return_value
    assert [c.args for c in client.logger.call_args_list] == [("etl_file_loaded",), ("etl_run_summary",)]
    logger = client.logger.return_value
    (payload,), kwargs = logger.log_struct.call_args
    assert payload["event"] == "etl_run_summary" and payload["quarantined_rows"] == 3 and payload["pipeline"] == "orders"
    assert kwargs["severity"] == "WARNING" and kwargs["labels"] == {"pipeline": "orders"}
    assert kwargs["resource"].type == "global"
    batch = logger.batch.return_value
    assert [c.args[0] for c in batch.log_struct.call_args_list] == [FILE_EVENT] * 3  # one API call for the batch
    batch.commit.assert_called_once_with()


@pytest.mark.parametrize("summary, severity", [
    ({"outcome": "failed"}, "ERROR"), ({"outcome": "partial"}, "WARNING"), ({"outcome": "succeeded", "quarantined_rows": 1}, "WARNING"),
    ({"outcome": "succeeded", "quarantined_rows": 0, "rejected_files": 0}, "INFO")])
def test_summary_severity_follows_the_outcome(summary, severity):
    from workloads.etl.reporting import severity as severity_of

    assert severity_of(summary) == severity


def test_local_reporter_appends_the_file_events_then_the_summary(tmp_path):
    reporter = JsonlFileReporter(str(tmp_path / "logs" / "s.jsonl"))
    reporter.report({"event": "etl_run_summary", "a": 1}, [FILE_EVENT])
    reporter.report({"event": "etl_run_summary", "a": 2})
    assert read_run_log(str(tmp_path / "logs" / "s.jsonl")) == [{"event": "etl_run_summary", "a": 1}, {"event": "etl_run_summary", "a": 2}]
    assert read_run_log(str(tmp_path / "logs" / "s.jsonl"), event="etl_file_loaded") == [FILE_EVENT]
