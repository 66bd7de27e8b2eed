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


_TAG_FIELDS = ("source_tags", "target_tags")
_ACCOUNT_FIELDS = ("source_service_accounts", "target_service_accounts")


@rule("GR-NET-008", ERROR, "Allow rules pick VMs by service account, never by network tag (and never mix the two).",
      "use target_service_accounts / source_service_accounts (the workload's account): anyone who can set tags on a VM "
      "could tag it into the rule; GCP refuses a rule mixing tags and service accounts", "google_compute_firewall")
def firewall_by_service_account(t: Target):
    a = t.attrs
    tags = [f for f in _TAG_FIELDS if a.get(f)]
    accounts = [f for f in _ACCOUNT_FIELDS if a.get(f)]
    if tags and accounts:
        return f"mixes {', '.join(tags)} with {', '.join(accounts)} (GCP refuses the rule)"
    if tags and blocks(a.get("allow")):
        return f"allow rule selects VMs by {', '.join(tags)}"
    return None


_FLOW_INTERVALS = {"INTERVAL_5_SEC", "INTERVAL_30_SEC", "INTERVAL_1_MIN", "INTERVAL_5_MIN", "INTERVAL_10_MIN", "INTERVAL_15_MIN"}


@rule("GR-NET-009", ERROR, "Subnet flow logs sample (0, 1], use a known interval, and name metadata fields only with CUSTOM metadata.",
      "set log_config.flow_sampling in (0, 1] (0 logs nothing), aggregation_interval to INTERVAL_*, and metadata_fields "
      "only with metadata = CUSTOM_METADATA (config network.flow_log_*)", "google_compute_subnetwork")
def flow_log_config(t: Target):
    config = blocks(t.attrs.get("log_config"))
    if not config:
        return None
    c, problems = config[0], []
    sampling = c.get("flow_sampling")
    if sampling is not None and not computed(sampling) and not 0 < float(sampling) <= 1:
        problems.append(f"flow_sampling {sampling} outside (0, 1]")
    interval = c.get("aggregation_interval")
    if interval is not None and not computed(interval) and interval not in _FLOW_INTERVALS:
        problems.append(f"aggregation_interval {interval!r} is not one of {', '.join(sorted(_FLOW_INTERVALS))}")
    custom = c.get("metadata") == "CUSTOM_METADATA"
    if custom != bool(c.get("metadata_fields")):
        problems.append("metadata_fields go with metadata = CUSTOM_METADATA, and only with it")
    return "; ".join(problems) or None


RULES = [no_world_ingress, admin_ports_only_from_iap, no_external_ip, subnet_flow_logs, private_google_access,
         custom_mode_vpc, firewall_logging, firewall_by_service_account, flow_log_config]
