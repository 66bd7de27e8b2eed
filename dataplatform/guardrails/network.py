"""Network: nothing reachable from the internet, admin ports only through IAP, logged subnets."""

from __future__ import annotations

from dataplatform.guardrails.rule import ERROR, WARNING, Target, blocks, computed, expect, is_false, is_true, rule

IAP_RANGE = "35.235.240.0/20"
"""Source range of Identity-Aware Proxy TCP forwarding (Google constant)."""
WORLD = frozenset({"0.0.0.0/0", "::/0"})
ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
INSTANCES = ("google_compute_instance", "google_compute_instance_template", "google_compute_region_instance_template")
# Special-purpose subnets take neither flow logs nor Private Google Access.
_SPECIAL_SUBNET_PURPOSES = {"REGIONAL_MANAGED_PROXY", "GLOBAL_MANAGED_PROXY", "INTERNAL_HTTPS_LOAD_BALANCER",
                            "PRIVATE_SERVICE_CONNECT", "PRIVATE_NAT"}


def _ingress_allow(t: Target) -> bool:
    a = t.attrs
    return (a.get("direction") or "INGRESS") == "INGRESS" and bool(blocks(a.get("allow"))) and not is_true(a.get("disabled"))


def _sources(t: Target) -> list[str] | None:
    """Source ranges of an ingress rule; GCP means 0.0.0.0/0 when no source of any kind is given."""
    a = t.attrs
    ranges = [r for r in a.get("source_ranges") or [] if isinstance(r, str)]
    if not ranges and not a.get("source_tags") and not a.get("source_service_accounts"):
        return ["0.0.0.0/0"]
    return ranges


def _opens(allow: dict, port: int) -> bool:
    if str(allow.get("protocol", "")).lower() not in ("tcp", "all", "6"):
        return False
    ports = allow.get("ports") or []
    if not ports:
        return True  # no ports: every port of the protocol
    for spec in ports:
        low, _, high = str(spec).partition("-")
        if low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


@rule("GR-NET-001", ERROR, "No allow rule admits ingress from 0.0.0.0/0 (an ingress rule without sources means 0.0.0.0/0).",
      f"restrict source_ranges (IAP: {IAP_RANGE}) or use source_tags between workloads", "google_compute_firewall")
def no_world_ingress(t: Target):
    if not _ingress_allow(t):
        return None
    open_to = sorted(set(_sources(t) or []) & WORLD)
    return f"allows ingress from {', '.join(open_to)}" if open_to else None


@rule("GR-NET-002", ERROR, f"SSH/RDP from outside the VPC only through IAP ({IAP_RANGE}).",
      f"set source_ranges = [\"{IAP_RANGE}\"] and connect with `gcloud compute ssh --tunnel-through-iap`",
      "google_compute_firewall")
def admin_ports_only_from_iap(t: Target):
    if not _ingress_allow(t):
        return None
    ranges = [r for r in _sources(t) or [] if not computed(r) and r != IAP_RANGE]
    if not ranges:
        return None
    opened = [f"{name} ({port})" for port, name in ADMIN_PORTS.items() if any(_opens(a, port) for a in blocks(t.attrs.get("allow")))]
    return f"opens {', '.join(opened)} to {', '.join(ranges)}" if opened else None


@rule("GR-NET-003", ERROR, "Instances have no external IP (no access_config); egress goes through Cloud NAT.",
      "remove access_config / ipv6_access_config from network_interface", *INSTANCES)
def no_external_ip(t: Target):
    for nic in blocks(t.attrs.get("network_interface")):
        if blocks(nic.get("access_config")) or blocks(nic.get("ipv6_access_config")):
            return "a network_interface has an access_config (external IP)"
    return None


def _special(t: Target) -> bool:
    return t.attrs.get("purpose") in _SPECIAL_SUBNET_PURPOSES


@rule("GR-NET-004", ERROR, "Subnets keep VPC flow logs.",
      "add log_config { aggregation_interval, flow_sampling, metadata } (Network does)", "google_compute_subnetwork")
def subnet_flow_logs(t: Target):
    return None if _special(t) or blocks(t.attrs.get("log_config")) else "subnet has no log_config (flow logs off)"


@rule("GR-NET-005", ERROR, "Subnets use Private Google Access (private workers reach Google APIs without external IPs).",
      "set private_ip_google_access = true", "google_compute_subnetwork")
def private_google_access(t: Target):
    return None if _special(t) else expect(t.attrs.get("private_ip_google_access"), is_true, "private_ip_google_access is not true")


@rule("GR-NET-006", ERROR, "VPCs are custom-mode (no auto-created subnets in every region).",
      "set auto_create_subnetworks = false (the provider default is true)", "google_compute_network")
def custom_mode_vpc(t: Target):
    return expect(t.attrs.get("auto_create_subnetworks", True), is_false, "auto_create_subnetworks is not false")


@rule("GR-NET-007", WARNING, "Firewall rules log their matches.",
      'add log_config { metadata = "INCLUDE_ALL_METADATA" }', "google_compute_firewall")
def firewall_logging(t: Target):
    return None if blocks(t.attrs.get("log_config")) else "firewall rule has no log_config"


RULES = [no_world_ingress, admin_ports_only_from_iap, no_external_ip, subnet_flow_logs, private_google_access,
         custom_mode_vpc, firewall_logging]
