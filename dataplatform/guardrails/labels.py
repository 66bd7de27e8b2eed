"""Labels: every labelable resource carries the cost-attribution labels, in a form GCP accepts."""

from __future__ import annotations

from dataplatform import naming
from dataplatform.guardrails.rule import ERROR, Target, Unverified, computed, rule

REQUIRED_LABEL_KEYS = ("owner", "cost_center", "env", "managed_by")
MAX_LABELS = 64


def _labels(t: Target):
    return t.attrs.get(t.label_attribute) if t.label_attribute else None


@rule("GR-LBL-001", ERROR, f"Every labelable resource carries {', '.join(REQUIRED_LABEL_KEYS)}.",
      "build the stack on EnvironmentStack (it stamps the environment's labels) or add StampLabels; do not override the labels attribute with a map lacking these keys",
      "google_*")
def required_labels(t: Target):
    if t.label_attribute is None:
        return None
    labels = _labels(t)
    if computed(labels):
        return Unverified(f"{t.label_attribute} is computed ({labels!r})")
    missing = [k for k in REQUIRED_LABEL_KEYS if k not in (labels if isinstance(labels, dict) else {})]
    return f"{t.label_attribute} lacks {', '.join(missing)}" if missing else None


@rule("GR-LBL-002", ERROR, "Label keys and values are valid GCP labels (lowercase, <= 63 chars, <= 64 labels).",
      f"keys: {naming.describe('label_key')}; values: {naming.describe('label_value')}", "google_*")
def valid_labels(t: Target):
    labels = _labels(t)
    if not isinstance(labels, dict):
        return None
    bad = [f"key {k!r}" for k in labels if not computed(k) and not naming.is_valid("label_key", k)]
    bad += [f"{k}={v!r}" for k, v in labels.items()
            if not computed(v) and not (isinstance(v, str) and naming.is_valid("label_value", v))]
    if len(labels) > MAX_LABELS:
        bad.append(f"{len(labels)} labels (max {MAX_LABELS})")
    return f"invalid {t.label_attribute}: {', '.join(bad)}" if bad else None


RULES = [required_labels, valid_labels]
