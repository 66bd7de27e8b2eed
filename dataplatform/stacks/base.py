"""What every stack of an environment shares: the provider, the label Aspect, the guardrails,
the grant ledger and the dependency wiring (dataplatform/ordering.py)."""

from __future__ import annotations

from cdktn import Aspects, TerraformStack
from cdktn_provider_google.provider import GoogleProvider
from constructs import Construct

from dataplatform.config import Environment
from dataplatform.constructs.iam import GrantLedger
from dataplatform.guardrails import attach_guardrails
from dataplatform.labels import StampLabels
from dataplatform.ordering import DependencyPlan, WireDependencies


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
        # Aspects must sit on each stack: one added to the App is never run.
        Aspects.of(self).add(StampLabels(env.all_labels))
        # Dependency wiring runs once at synth, when every construct exists: an aspect on a leaf
        # construct is visited exactly once (one added to the stack would visit every node).
        Aspects.of(Construct(self, "dependency-wiring")).add(WireDependencies(self.wire_dependencies))
        # The rule pack runs as a validation: after every aspect, before cdk.tf.json is written.
        attach_guardrails(self)

    def wire_dependencies(self, plan: DependencyPlan) -> None:
        """Add the `depends_on` Terraform cannot infer (subclasses: see dataplatform/ordering.py)."""

    def service_account_email(self, workload: str) -> str:
        """Email of an SA by naming convention, for identities created in another stack."""
        return f"{self.namer.service_account(workload)}@{self.env.project_id}.iam.gserviceaccount.com"
