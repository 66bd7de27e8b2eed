"""Service levels: SLOs, SLO/metric alert conditions, log-based metrics and dashboards the
Cloud Monitoring and Logging APIs accept (each rule quotes the documented limit it enforces).

`terraform validate` checks none of these; the APIs refuse them at apply time.
"""

from __future__ import annotations

import json
import re

from dataplatform.guardrails.rule import ERROR, Target, as_int, block, blocks, computed, duration_seconds, rule

MAX_SLO_GOAL = 0.999  # ServiceLevelObjective.goal: 0 < goal <= 0.999
MAX_ROLLING_DAYS = 30  # rolling_period: an integer multiple of 1 day, no larger than 30 days
CALENDAR_PERIODS = ("DAY", "WEEK", "FORTNIGHT", "MONTH")
MIN_ALIGNMENT_S, MAX_ALERT_ALIGNMENT_S = 60, 90_000  # Aggregation.alignment_period: >= 60 s; <= 25 h for alerting
LOOKBACK = re.compile(r'select_slo_\w+\(\s*"[^"]+"\s*(?:,\s*"(?P<lookback>[^"]*)")?\s*\)')
LOOKBACK_VALUE = re.compile(r"^\d+(ns|us|ms|s|m|h)$")  # valid units: ns, us, ms, s, m, h (no d)
MAX_METRIC_ID = 100
MAX_MOSAIC_COLUMNS = 48


def _conditions(t: Target) -> list[dict]:
    return blocks(t.attrs.get("conditions"))


@rule("GR-SLO-001", ERROR, f"SLO goals are above 0 and at most {MAX_SLO_GOAL} (the API refuses 1.0 and anything above 0.999).",
      f"set goal in (0, {MAX_SLO_GOAL}], e.g. 0.99", "google_monitoring_slo")
def slo_goal(t: Target):
    goal = t.attrs.get("goal")
    if computed(goal):
        return None
    if not isinstance(goal, (int, float)) or not 0 < goal <= MAX_SLO_GOAL:
        return f"goal is {goal!r}, outside (0, {MAX_SLO_GOAL}]"
    return None


@rule("GR-SLO-002", ERROR, f"An SLO has one compliance period: rolling 1-{MAX_ROLLING_DAYS} whole days, or a calendar DAY/WEEK/FORTNIGHT/MONTH.",
      f"set rolling_period_days to 1-{MAX_ROLLING_DAYS} (or calendar_period), not both", "google_monitoring_slo")
def slo_period(t: Target):
    rolling, calendar = t.attrs.get("rolling_period_days"), t.attrs.get("calendar_period")
    if (rolling is None) == (calendar is None):
        return "set exactly one of rolling_period_days and calendar_period"
    if rolling is not None:
        days = as_int(rolling)
        if days is None or not 1 <= days <= MAX_ROLLING_DAYS or (isinstance(rolling, float) and not rolling.is_integer()):
            return f"rolling_period_days is {rolling!r}, not a whole number of days in 1-{MAX_ROLLING_DAYS}"
    elif calendar not in CALENDAR_PERIODS:
        return f"calendar_period is {calendar!r}, not one of {', '.join(CALENDAR_PERIODS)}"
    return None


@rule("GR-SLO-003", ERROR, "A good/total ratio SLI names exactly two of its good, bad and total filters (the API assumes good + bad = total).",
      "keep two of good_service_filter, bad_service_filter, total_service_filter", "google_monitoring_slo")
def slo_ratio_filters(t: Target):
    sli = block(block(t.attrs.get("request_based_sli")).get("good_total_ratio"))
    if not sli:
        return None
    named = [k for k in ("good_service_filter", "bad_service_filter", "total_service_filter") if sli.get(k)]
    return None if len(named) == 2 else f"good_total_ratio names {len(named)} filter(s) ({', '.join(named) or 'none'}), not 2"


@rule("GR-SLO-004", ERROR, "SLO alert conditions use only the select_slo_* filter (no aggregations), with a lookback in ns/us/ms/s/m/h.",
      'filter = select_slo_burn_rate("<slo name>", "3600s"); drop aggregations', "google_monitoring_alert_policy")
def slo_condition(t: Target):
    problems = []
    for c in _conditions(t):
        threshold = block(c.get("condition_threshold"))
        match = LOOKBACK.search(str(threshold.get("filter", "")))
        if not match:
            continue
        if threshold.get("aggregations") or threshold.get("denominator_filter"):
            problems.append(f"condition {c.get('display_name')!r}: an SLO selector takes no aggregations")
        lookback = match.group("lookback")
        if lookback is not None and not LOOKBACK_VALUE.fullmatch(lookback):
            problems.append(f"condition {c.get('display_name')!r}: lookback {lookback!r} is not a number with unit ns, us, ms, s, m or h")
    return "; ".join(problems) or None


@rule("GR-SLO-005", ERROR, f"Alert conditions align over {MIN_ALIGNMENT_S} s to {MAX_ALERT_ALIGNMENT_S} s (25 h, the alerting maximum).",
      "set aggregations.alignment_period within 60s-90000s; for longer windows use an SLO", "google_monitoring_alert_policy")
def alert_alignment(t: Target):
    problems = []
    for c in _conditions(t):
        for kind in ("condition_threshold", "condition_absent"):
            for agg in blocks(block(c.get(kind)).get("aggregations")):
                period = agg.get("alignment_period")
                seconds = duration_seconds(period)
                if period is not None and not computed(period) and (seconds is None or not MIN_ALIGNMENT_S <= seconds <= MAX_ALERT_ALIGNMENT_S):
                    problems.append(f"condition {c.get('display_name')!r}: alignment_period {period!r}")
    return ("; ".join(problems) + f" outside {MIN_ALIGNMENT_S}s-{MAX_ALERT_ALIGNMENT_S}s") if problems else None


@rule("GR-SLO-006", ERROR, "Metric-absence conditions last a whole number of minutes (the API accepts only multiples of 60 s).",
      'set condition_absent.duration to a multiple of 60 s, e.g. "600s"', "google_monitoring_alert_policy")
def absence_duration(t: Target):
    for c in _conditions(t):
        duration = block(c.get("condition_absent")).get("duration")
        if duration is None or computed(duration):
            continue
        seconds = duration_seconds(duration)
        if seconds is None or seconds < 60 or seconds % 60:
            return f"condition {c.get('display_name')!r}: condition_absent.duration {duration!r} is not a whole number of minutes"
    return None


@rule("GR-SLO-007", ERROR, "Log-based metrics: id of at most 100 characters; every extracted label declared; a DISTRIBUTION has a value extractor and increasing bucket bounds.",
      "declare each label_extractors key in metric_descriptor.labels; give distributions value_extractor and bucket_options",
      "google_logging_metric")
def log_metric(t: Target):
    problems = []
    name = t.attrs.get("name")
    if isinstance(name, str) and not computed(name) and not re.fullmatch(r"[A-Za-z0-9_\-./@]{1,%d}" % MAX_METRIC_ID, name):
        problems.append(f"name {name!r} is not 1-{MAX_METRIC_ID} characters of letters, digits and _-./@")
    descriptor = block(t.attrs.get("metric_descriptor"))
    declared = {label.get("key") for label in blocks(descriptor.get("labels"))}
    undeclared = sorted(set(t.attrs.get("label_extractors") or {}) - declared)
    if undeclared:
        problems.append(f"label_extractors {undeclared} not declared in metric_descriptor.labels")
    if descriptor.get("value_type") == "DISTRIBUTION":
        if not t.attrs.get("value_extractor"):
            problems.append("a DISTRIBUTION metric needs value_extractor")
        buckets = block(t.attrs.get("bucket_options"))
        if not buckets:
            problems.append("a DISTRIBUTION metric needs bucket_options")
        bounds = block(buckets.get("explicit_buckets")).get("bounds")
        if isinstance(bounds, list) and any(not b < a for b, a in zip(bounds, bounds[1:])):
            problems.append(f"explicit bucket bounds {bounds} are not strictly increasing")
    return "; ".join(problems) or None


@rule("GR-SLO-008", ERROR, f"Dashboards are valid JSON whose mosaic tiles fit the grid (at most {MAX_MOSAIC_COLUMNS} columns) without overlapping.",
      "keep every tile within xPos + width <= columns and give overlapping tiles distinct positions", "google_monitoring_dashboard")
def dashboard_layout(t: Target):
    text = t.attrs.get("dashboard_json")
    try:
        body = json.loads(text) if isinstance(text, str) else None
    except ValueError as exc:
        return f"dashboard_json is not JSON ({exc})"
    mosaic = (body or {}).get("mosaicLayout")
    if not mosaic:
        return None
    columns = mosaic.get("columns", MAX_MOSAIC_COLUMNS)
    if not isinstance(columns, int) or not 1 <= columns <= MAX_MOSAIC_COLUMNS:
        return f"mosaicLayout.columns is {columns!r}, not 1-{MAX_MOSAIC_COLUMNS}"
    cells: dict[tuple[int, int], int] = {}
    for i, tile in enumerate(mosaic.get("tiles", [])):
        x, y, w, h = (tile.get(k, 0) for k in ("xPos", "yPos", "width", "height"))
        if x < 0 or y < 0 or w < 1 or h < 1 or x + w > columns:
            return f"tile {i} ({x},{y} {w}x{h}) does not fit {columns} columns"
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                if (cx, cy) in cells:
                    return f"tile {i} overlaps tile {cells[(cx, cy)]}"
                cells[(cx, cy)] = i
    return None


RULES = [slo_goal, slo_period, slo_ratio_filters, slo_condition, alert_alignment, absence_duration, log_metric, dashboard_layout]
