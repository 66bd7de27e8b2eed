"""A monthly billing budget per environment: 50/90/100 % actual and 100 % forecast."""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.billing_budget import BillingBudget, BillingBudgetThresholdRules
from cdktn_provider_google.pubsub_topic import PubsubTopic
from constructs import Construct

THRESHOLDS = ((0.5, "CURRENT_SPEND"), (0.9, "CURRENT_SPEND"), (1.0, "CURRENT_SPEND"), (1.0, "FORECASTED_SPEND"))


@dataclass(frozen=True)
class BudgetSpec:
    name: str
    topic_name: str
    billing_account: str
    project_number: str
    amount: int
    currency: str
    channel_ids: list[str]


class Budget(Construct):
    """Alerts go to the email channels and to a Pub/Sub topic (for automation, e.g. capping)."""

    def __init__(self, scope: Construct, id_: str, spec: BudgetSpec):
        super().__init__(scope, id_)
        self.topic = PubsubTopic(self, "topic", name=spec.topic_name, message_retention_duration="604800s")
        self.budget = BillingBudget(
            self,
            "budget",
            billing_account=spec.billing_account,
            display_name=spec.name,
            budget_filter={"projects": [f"projects/{spec.project_number}"], "calendar_period": "MONTH"},
            amount={"specified_amount": {"currency_code": spec.currency, "units": str(spec.amount)}},
            threshold_rules=[BillingBudgetThresholdRules(threshold_percent=pct, spend_basis=basis) for pct, basis in THRESHOLDS],
            all_updates_rule={
                "monitoring_notification_channels": spec.channel_ids,
                "pubsub_topic": self.topic.id,
                "disable_default_iam_recipients": False,
            },
        )
