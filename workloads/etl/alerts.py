"""The quarantine alert: one summary mail per run through SendGrid's v3 REST API.

The API key is read from Secret Manager at send time (never passed as a parameter, never
logged).  Two stand-ins exist for running without GCP or network, each replacing one
dependency and nothing else: a local file path instead of a Secret Manager version name, and
an *outbox* directory that records the exact HTTP request instead of POSTing it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

LOG = logging.getLogger(__name__)

SENDGRID_URL = "https://api.sendgrid.com/v3/mail/send"
_SECRET_VERSION = "projects/"


def read_secret(name: str) -> str:
    """The secret's value: Secret Manager for ``projects/*/secrets/*/versions/*``, else a local file."""
    if name.startswith(_SECRET_VERSION):
        from google.cloud import secretmanager

        client = secretmanager.SecretManagerServiceClient()
        return client.access_secret_version(name=name).payload.data.decode("utf-8").strip()
    return Path(name).read_text(encoding="utf-8").strip()


def parse_recipients(alert_to: str) -> list[str]:
    return [address.strip() for address in alert_to.split(",") if address.strip()]


def sendgrid_body(sender: str, recipients: Sequence[str], subject: str, text: str) -> dict[str, Any]:
    """The v3 ``mail/send`` request body (one personalization: every recipient sees the others)."""
    return {
        "personalizations": [{"to": [{"email": address} for address in recipients]}],
        "from": {"email": sender},
        "subject": subject,
        "content": [{"type": "text/plain", "value": text}],
    }


class _OutboxResponse:
    status_code = 202
    text = ""

    def raise_for_status(self) -> None:
        return None


@dataclass(frozen=True)
class OutboxTransport:
    """Writes each request to ``directory`` as JSON (API key redacted) instead of sending it."""

    directory: str

    def __call__(self, url: str, *, headers: Mapping[str, str], json: Any, timeout: float) -> _OutboxResponse:
        import json as jsonlib

        os.makedirs(self.directory, exist_ok=True)
        record = {"url": url, "headers": {**headers, "Authorization": "Bearer <redacted>"}, "json": json}
        fd, path = tempfile.mkstemp(prefix="mail-", suffix=".json", dir=self.directory)
        with os.fdopen(fd, "w") as f:
            jsonlib.dump(record, f, indent=2)
        LOG.info("alert mail written to outbox %s", path)
        return _OutboxResponse()


def _requests_post(url: str, *, headers: Mapping[str, str], json: Any, timeout: float):
    import requests

    return requests.post(url, headers=headers, json=json, timeout=timeout)


@dataclass(frozen=True)
class SendGridMailer:
    secret_name: str
    sender: str
    recipients: tuple[str, ...]
    post: Callable[..., Any] = _requests_post

    def send(self, subject: str, text: str) -> None:
        """Send one mail; raises on an HTTP error so the caller can decide what a failure means."""
        api_key = read_secret(self.secret_name)
        response = self.post(
            SENDGRID_URL,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            json=sendgrid_body(self.sender, self.recipients, subject, text),
            timeout=30,
        )
        if response.status_code >= 400:
            # SendGrid's error body says what is wrong (bad sender, bad key...) and holds no secret.
            raise RuntimeError(f"SendGrid answered {response.status_code}: {response.text[:500]}")


def mailer_for(alert_secret: str, alert_from: str, alert_to: str, outbox: str | None = None) -> SendGridMailer | None:
    """The configured mailer, or None when alerting is not configured (no secret or no recipient)."""
    recipients = tuple(parse_recipients(alert_to or ""))
    if not alert_secret or not recipients or not alert_from:
        return None
    post = OutboxTransport(outbox) if outbox else _requests_post
    return SendGridMailer(alert_secret, alert_from, recipients, post)


def summary_mail(summary: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of the quarantine alert for one run summary."""
    pipeline = summary["pipeline"]
    subject = (
        f"[etl] {pipeline}: {summary['quarantined_rows']} row(s) quarantined"
        + (f", {summary['rejected_files']} file(s) rejected" if summary.get("rejected_files") else "")
    )
    lines = [
        f"The ETL run for pipeline '{pipeline}' loaded {summary['valid_rows']} row(s) from "
        f"{summary['processed_files']} file(s) and quarantined {summary['quarantined_rows']} row(s).",
        "",
    ]
    for item in summary.get("files", []):
        if item["quarantined_rows"] or item.get("error"):
            lines.append(f"- {item['uri']} (generation {item['generation']})")
            if item.get("error"):
                lines.append(f"    file rejected: {item['error']}")
            else:
                lines.append(f"    {item['quarantined_rows']} quarantined row(s) in {item['quarantine_uri']}")
            for reason, count in sorted(item.get("reasons", {}).items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"    {count} x {reason}")
    lines += ["", "Quarantined rows keep their original values plus an _error column naming every problem."]
    return subject, "\n".join(lines) + "\n"


def send_summary_alert(mailer: SendGridMailer | None, summary: Mapping[str, Any]) -> bool:
    """Send the alert when the run quarantined something; True if a mail was sent.

    A failed send is logged, not raised: by now the checkpoint is committed, and failing the
    job would only make Dataflow retry work that is already done.  The log-based metric on
    quarantined_rows still sees the run.
    """
    if not (summary["quarantined_rows"] or summary.get("rejected_files")):
        return False
    if mailer is None:
        LOG.warning("rows were quarantined but alerting is not configured")
        return False
    subject, text = summary_mail(summary)
    try:
        mailer.send(subject, text)
    except Exception:  # noqa: BLE001 - any failure to alert is reported the same way
        LOG.exception(json.dumps({"event": "etl_alert_failed", "pipeline": summary["pipeline"]}))
        return False
    return True
