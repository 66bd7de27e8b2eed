"""The one place that builds resource names, and rejects what GCP would reject.

Every construct asks a `Namer` for names instead of formatting strings itself, so a
prefix that makes any derived name invalid is caught once, at config load, naming
the config field that caused it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Each kind: (regex, human description). Regexes follow the GCP API docs.
_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "bucket": (
        re.compile(r"^(?!goog)(?!.*google)[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$"),
        "3-63 chars of a-z 0-9 - _ ., starting and ending with a letter or digit, "
        "not starting with 'goog' nor containing 'google'",
    ),
    "service_account": (
        re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"),
        "6-30 chars of a-z 0-9 -, starting with a letter, not ending with '-'",
    ),
    "dataset": (
        re.compile(r"^[A-Za-z0-9_]{1,1024}$"),
        "1-1024 chars of letters, digits and _",
    ),
    "table": (
        re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$"),
        "1-1024 chars of letters, digits and _, not starting with a digit",
    ),
    "column": (
        re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,299}$"),
        "1-300 chars of letters, digits and _, not starting with a digit",
    ),
    "resource": (  # RFC 1035: networks, subnets, routers, firewalls, instances, ...
        re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"),
        "1-63 chars of a-z 0-9 -, starting with a letter, not ending with '-' (RFC 1035)",
    ),
    "secret": (
        re.compile(r"^[A-Za-z0-9_-]{1,255}$"),
        "1-255 chars of letters, digits, - and _",
    ),
    "wif_pool": (
        re.compile(r"^(?!gcp-)[a-z0-9][a-z0-9-]{2,30}[a-z0-9]$"),
        "4-32 chars of a-z 0-9 -, not starting with 'gcp-'",
    ),
    "label_key": (
        re.compile(r"^[a-z][a-z0-9_-]{0,62}$"),
        "1-63 chars of a-z 0-9 _ -, starting with a lowercase letter",
    ),
    "label_value": (
        re.compile(r"^[a-z0-9_-]{0,63}$"),
        "0-63 chars of a-z 0-9 _ -",
    ),
    "custom_role": (
        re.compile(r"^[a-zA-Z0-9_.]{3,64}$"),
        "3-64 chars of letters, digits, _ and .",
    ),
    "environment": (
        re.compile(r"^[a-z][a-z0-9]{1,9}$"),
        "2-10 chars of a-z 0-9, starting with a letter",
    ),
    "metric": (  # log-based metric ids; underscores only, so PromQL names them without quoting
        re.compile(r"^[A-Za-z0-9_]{1,100}$"),
        "1-100 chars of letters, digits and _",
    ),
    "pipeline": (  # used in bucket folders, SA-free names, job names and table ids
        re.compile(r"^[a-z][a-z0-9_]{0,29}$"),
        "1-30 chars of a-z 0-9 _, starting with a letter",
    ),
}


class InvalidName(ValueError):
    """A name GCP would reject; the message says which rule it breaks."""


def check(kind: str, value: str) -> str:
    """Return `value` if it is a valid `kind` name, else raise InvalidName."""
    pattern, description = _RULES[kind]
    if not pattern.fullmatch(value):
        raise InvalidName(f"{kind} name {value!r} is invalid: expected {description}")
    return value


def is_valid(kind: str, value: str) -> bool:
    return bool(_RULES[kind][0].fullmatch(value))


def describe(kind: str) -> str:
    return _RULES[kind][1]


@dataclass(frozen=True)
class Namer:
    """Names every resource of one environment from `<prefix>-<env>-<component>`."""

    prefix: str
    env: str
    unique: str = ""
    """Appended to bucket names (the project number): bucket names are global across all of GCP,
    so `<prefix>-<env>-<component>` alone is likely taken; the project number makes them unique by construction."""

    @property
    def base(self) -> str:
        return f"{self.prefix}-{self.env}"

    def resource(self, component: str) -> str:
        return check("resource", f"{self.base}-{component}")

    def bucket(self, component: str) -> str:
        return check("bucket", "-".join(filter(None, (self.base, component, self.unique))))

    def custom_role(self, component: str) -> str:
        """Project custom role id (letters, digits, _ and .; 3-64 chars)."""
        return check("custom_role", f"{self.base}_{component}".replace("-", "_"))

    def service_account(self, workload: str) -> str:
        return check("service_account", f"{self.base}-{workload}")

    def dataset(self, component: str) -> str:
        return check("dataset", f"{self.base}_{component}".replace("-", "_"))

    def secret(self, component: str) -> str:
        return check("secret", f"{self.base}-{component}")

    def metric(self, component: str) -> str:
        """A log-based metric id (`<prefix>_<env>_<component>`)."""
        return check("metric", f"{self.base}_{component}".replace("-", "_"))

    def pipeline_resource(self, pipeline: str, suffix: str = "") -> str:
        """RFC 1035 name of a per-pipeline resource (pipeline ids may hold '_', resources may not)."""
        return self.resource("-".join(filter(None, (pipeline.replace("_", "-"), suffix))))

    def wif_pool(self, component: str) -> str:
        return check("wif_pool", f"{self.base}-{component}")
