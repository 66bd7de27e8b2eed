"""What every stack of an environment shares: the provider and the label Aspect."""

from __future__ import annotations

from cdktn import Aspects, TerraformStack
from cdktn_provider_google.provider import GoogleProvider
from constructs import Construct

from dataplatform.config import Environment
from dataplatform.guardrails import attach_guardrails
from dataplatform.labels import StampLabels


class EnvironmentStack(TerraformStack):
    def __init__(self, scope: Construct, id_: str, env: Environment):
        super().__init__(scope, id_)
        self.env = env
        self.namer = env.namer
        GoogleProvider(
            self,
            "google",
            project=env.project_id,
            region=env.region,
            add_terraform_attribution_label=True,
        )
        # Aspects must sit on each stack: one added to the App is never run.
        Aspects.of(self).add(StampLabels(env.all_labels))
        # The rule pack runs as a validation: after every aspect, before cdk.tf.json is written.
        attach_guardrails(self)

    def service_account_email(self, workload: str) -> str:
        """Email of an SA by naming convention, for identities created in another stack."""
        return f"{self.namer.service_account(workload)}@{self.env.project_id}.iam.gserviceaccount.com"
