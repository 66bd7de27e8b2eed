"""What every stack of an environment shares: the provider, the labels, the guardrails, the
grant ledger and the dependency wiring (dataplatform/ordering.py).

At synth, per stack: the labels are stamped (an Aspect on a leaf construct, visited once, so
before any Aspect deeper in the tree), then, after every Aspect, one validation reads the
stack's resolved JSON once, adds the `depends_on` Terraform cannot infer, and runs the rule
pack on that JSON, which is what cdk.tf.json then holds."""

from __future__ import annotations

from cdktn import Aspects, TerraformStack
from cdktn_provider_google.provider import GoogleProvider
from constructs import Construct

from dataplatform.config import Environment
from dataplatform.constructs.iam import GrantLedger
from dataplatform.guardrails import attach_guardrails
from dataplatform.labels import AtSynth, stamp_labels
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
        # Labels are stamped once at synth, when every construct exists: an aspect on a leaf
        # construct is visited exactly once (one added to the stack would be called back for every
        # construct). Aspects must sit in each stack: one added to the App is never run.
        Aspects.of(Construct(self, "labels")).add(AtSynth(lambda: stamp_labels(self, env.all_labels)))
        # Dependency wiring, then the rule pack, run as one validation: after every aspect, before
        # cdk.tf.json is written, on one resolved JSON of the stack.
        attach_guardrails(self, prepare=lambda doc: DependencyPlan.wire(self, doc, self.wire_dependencies))

    def wire_dependencies(self, plan: DependencyPlan) -> None:
        """Add the `depends_on` Terraform cannot infer (subclasses: see dataplatform/ordering.py)."""

    def service_account_email(self, workload: str) -> str:
        """Email of an SA by naming convention, for identities created in another stack."""
        return f"{self.namer.service_account(workload)}@{self.env.project_id}.iam.gserviceaccount.com"
