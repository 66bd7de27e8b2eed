"""Google's service agents, created before anything grants them a role or relies on them.

Some agents exist only after a service's first use (the Cloud Storage agent, which must
publish object events for Eventarc, is the usual one), and a grant to an agent that does not
exist yet fails the apply. `google_workload_identity_service_agent` (GA provider, Workload
Identity API `generateServiceAgents`) creates them on request, with no API call at plan time,
so plans stay offline-able. An agent created on request is granted no role by Google, so each
gets here the role Google would have granted it (`ServiceAgentSpec.default_role`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn_provider_google.workload_identity_service_agent import WorkloadIdentityServiceAgent
from constructs import Construct

from dataplatform.constructs.iam import SERVICE_AGENTS, grant_project_roles, service_agent
from dataplatform.constructs.project_apis import ProjectApis



@dataclass(frozen=True)
class ServiceAgentsSettings:
    project: str
    project_number: str
    apis: ProjectApis


class ServiceAgents(Construct):
    def __init__(self, scope: Construct, id_: str, settings: ServiceAgentsSettings):
        super().__init__(scope, id_)
        self.agents: dict[str, WorkloadIdentityServiceAgent] = {}
        for service, spec in SERVICE_AGENTS.items():
            # Waits for the Workload Identity API and its service's API (BootstrapStack.wire_dependencies).
            agent = WorkloadIdentityServiceAgent(
                self, service, parent=f"projects/{settings.project_number}/locations/global/serviceProducers/{spec.api}")
            self.agents[service] = agent
            if spec.default_role:
                # Waits for the agent (BootstrapStack wires every grant to an agent to its creation).
                grant_project_roles(Construct(self, f"{service}-role"), settings.project,
                                    service_agent(service, settings.project_number), {
                    spec.default_role: f"the role Google grants its {service} agent; an agent created on request gets none"})
