"""Alerting: email channels and one alert policy per failure mode, each with a runbook.

Runbook text lives in the policy's documentation field, so the page an on-call engineer
receives says what broke and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.logging_metric import LoggingMetric
from cdktn_provider_google.monitoring_alert_policy import (
    MonitoringAlertPolicy,
    MonitoringAlertPolicyConditions,
    MonitoringAlertPolicyConditionsConditionAbsentAggregations,
    MonitoringAlertPolicyConditionsConditionThresholdAggregations,
)
from cdktn_provider_google.logging_metric import LoggingMetricMetricDescriptorLabels
from cdktn_provider_google.monitoring_notification_channel import MonitoringNotificationChannel
from constructs import Construct

from workloads.etl.reporting import SUMMARY_EVENT  # C1 (stdlib-only)

QUARANTINE_LOG_FILTER = f'jsonPayload.event="{SUMMARY_EVENT}" AND jsonPayload.quarantined_rows>0'
"""Matches the ETL's one structured summary line per run (see workloads/etl)."""


@dataclass(frozen=True)
class ChannelsSpec:
    emails: tuple[str, ...]
    prefix: str


class NotificationChannels(Construct):
    def __init__(self, scope: Construct, id_: str, spec: ChannelsSpec):
        super().__init__(scope, id_)
        self.channels = [
            MonitoringNotificationChannel(self, f"email-{i}", type="email", display_name=f"{spec.prefix} alerts: {email}",
                                          labels={"email_address": email}, force_delete=False)
            for i, email in enumerate(spec.emails)
        ]
        self.ids: list[str] = [c.id for c in self.channels]  # tokens, read once (each read is a jsii round trip)


@dataclass(frozen=True)
class AlertSpec:
    key: str
    display_name: str
    runbook: str
    condition: dict
    log_based: bool = False
    severity: str = "ERROR"
    """CRITICAL pages (fast burn), ERROR and WARNING are tickets."""


class Alerts(Construct):
    """Each `add` creates one alert policy wired to every channel."""

    def __init__(self, scope: Construct, id_: str, *, channels: NotificationChannels, prefix: str):
        super().__init__(scope, id_)
        self._channels = channels
        self._prefix = prefix
        self.policies: dict[str, MonitoringAlertPolicy] = {}

    def add(self, spec: AlertSpec) -> MonitoringAlertPolicy:
        strategy = {"auto_close": "86400s"}
        if spec.log_based:
            strategy["notification_rate_limit"] = {"period": "300s"}  # required for log-match conditions
        policy = MonitoringAlertPolicy(
            self,
            spec.key,
            display_name=f"[{self._prefix}] {spec.display_name}",
            combiner="OR",
            severity=spec.severity,
            enabled=True,
            conditions=[MonitoringAlertPolicyConditions(display_name=spec.display_name, **spec.condition)],
            notification_channels=self._channels.ids,
            alert_strategy=strategy,
            documentation={"mime_type": "text/markdown", "subject": f"[{self._prefix}] {spec.display_name}",
                           "content": spec.runbook.strip()},
        )
        self.policies[spec.key] = policy
        return policy


def threshold(filter_: str, *, value: float, duration: str = "0s", aligner: str = "ALIGN_MAX",
              comparison: str = "COMPARISON_GT", period: str = "300s") -> dict:
    return {"condition_threshold": {
        "filter": filter_, "comparison": comparison, "threshold_value": value, "duration": duration,
        "aggregations": [MonitoringAlertPolicyConditionsConditionThresholdAggregations(alignment_period=period, per_series_aligner=aligner)],
        "trigger": {"count": 1},
    }}


def absent(filter_: str, *, duration: str = "600s") -> dict:
    return {"condition_absent": {
        "filter": filter_, "duration": duration,
        "aggregations": [MonitoringAlertPolicyConditionsConditionAbsentAggregations(alignment_period="300s", per_series_aligner="ALIGN_MEAN")],
        "trigger": {"count": 1},
    }}


def quarantine_metric(scope: Construct, id_: str, name: str) -> LoggingMetric:
    """Counts ETL runs that quarantined rows, labelled by pipeline."""
    return LoggingMetric(
        scope,
        id_,
        name=name,
        description="ETL runs with quarantined rows (from the etl_run_summary log line)",
        filter=QUARANTINE_LOG_FILTER,
        metric_descriptor={"metric_kind": "DELTA", "value_type": "INT64", "unit": "1",
                           "labels": [LoggingMetricMetricDescriptorLabels(key="pipeline", value_type="STRING", description="pipeline name")]},
        label_extractors={"pipeline": "EXTRACT(jsonPayload.pipeline)"},
    )


def burn_rate(slo_name: str, *, lookback_seconds: int, rate: float) -> dict:
    """An SLO burn-rate condition: the error budget burns `rate` times faster than it may over
    the lookback window. SLO conditions use only the filter: no aggregations (documented)."""
    return {"condition_threshold": {
        "filter": f'select_slo_burn_rate("{slo_name}", "{lookback_seconds}s")',
        "comparison": "COMPARISON_GT", "threshold_value": round(rate, 2), "duration": "0s", "trigger": {"count": 1},
    }}


def fewer_than(filter_: str, count: int, *, window_seconds: int, group_by: tuple[str, ...] = ()) -> dict:
    """Fewer than `count` points summed over the window, missing data counting as a violation
    (a window without any point is exactly the "nothing happened" this watches for)."""
    return {"condition_threshold": {
        "filter": filter_, "comparison": "COMPARISON_LT", "threshold_value": count, "duration": "0s",
        "aggregations": [MonitoringAlertPolicyConditionsConditionThresholdAggregations(
            alignment_period=f"{window_seconds}s", per_series_aligner="ALIGN_SUM", cross_series_reducer="REDUCE_SUM",
            group_by_fields=list(group_by))],
        "evaluation_missing_data": "EVALUATION_MISSING_DATA_ACTIVE",
        "trigger": {"count": 1},
    }}
