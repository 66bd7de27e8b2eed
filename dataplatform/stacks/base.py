"""What every stack of an environment shares: the provider, the labels, the guardrails, the
grant ledger and the dependency wiring (dataplatform/ordering.py).

At synth, per stack, on the cdk.tf.json cdktn wrote (after every Aspect and override): `finish`
stamps the labels and adds the `depends_on` Terraform cannot infer, in Python, then the rule
pack checks that document, which is written back (dataplatform/guardrails/report.py)."""

from __future__ import annotations

from cdktn import TerraformStack
from cdktn_provider_google.provider import GoogleProvider
from constructs import Construct

from dataplatform.config import Environment
from dataplatform.constructs.iam import GrantLedger
from dataplatform.guardrails import attach_guardrails
from dataplatform.labels import stamp_document
from dataplatform.ordering import DependencyPlan


class EnvironmentStack(TerraformStack):
    def __init__(self, scope: Construct, id_: str, env: Environment):
        super().__init__(scope, id_)
        self.env = env
        self.namer = env.namer
        self.grant_ledger = GrantLedger()
        GoogleProvider(
            self,
            "google",
            project=env.project_id,
            region=env.region,
            add_terraform_attribution_label=True,
        )
        attach_guardrails(self, prepare=self.finish)

    def finish(self, doc: dict) -> dict:
        """The stack's last change, made on its written Terraform JSON: the environment's labels
        under each resource's own, then the `depends_on`; returns the document to write."""
        stamp_document(self, doc, self.env.all_labels)
        plan = DependencyPlan(doc)
        self.wire_dependencies(plan)
        plan.apply()
        return plan.doc

    def wire_dependencies(self, plan: DependencyPlan) -> None:
        """Add the `depends_on` Terraform cannot infer (subclasses: see dataplatform/ordering.py)."""

    def service_account_email(self, workload: str) -> str:
        """Email of an SA by naming convention, for identities created in another stack."""
        return f"{self.namer.service_account(workload)}@{self.env.project_id}.iam.gserviceaccount.com"
