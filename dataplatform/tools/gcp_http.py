"""The few Google API reads `make deploy` and `make preflight` make, over plain HTTPS (stdlib only).

A token comes from GOOGLE_OAUTH_ACCESS_TOKEN, else from `gcloud auth application-default
print-access-token` (the credentials Terraform uses); no token means the checks cannot run
and the callers say so. Tests fake `urlopen` (this module's name) at the transport level.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

TIMEOUT_S = 20


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Unreachable(Exception):
    """No answer at all (network, DNS, TLS): not a verdict on the project."""


def access_token(environ: dict[str, str], run=subprocess.run) -> str | None:
    """A Google OAuth access token for the caller's Application Default Credentials, or None."""
    if environ.get("GOOGLE_OAUTH_ACCESS_TOKEN"):
        return environ["GOOGLE_OAUTH_ACCESS_TOKEN"]
    gcloud = shutil.which("gcloud", path=environ.get("PATH"))
    if not gcloud:
        return None
    done = run([gcloud, "auth", "application-default", "print-access-token"], capture_output=True, text=True,
               timeout=60, env=environ)
    token = done.stdout.strip() if done.returncode == 0 else ""
    return token or None


class Client:
    def __init__(self, token: str | None, user_project: str | None = None):
        self.token = token
        self.user_project = user_project

    def call(self, method: str, url: str, body: dict | None = None, *, auth: bool = True) -> Response:
        headers = {"Accept": "application/json", "User-Agent": "gcp-data-platform-preflight"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
            if self.user_project:
                headers["x-goog-user-project"] = self.user_project
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = Request(url, data=data, headers=headers, method=method)
        try:
            with urlopen(request, timeout=TIMEOUT_S) as reply:
                return Response(reply.status, _json(reply.read()))
        except HTTPError as err:
            return Response(err.code, _json(err.read()))
        except (URLError, TimeoutError, OSError) as err:
            raise Unreachable(f"{url}: {getattr(err, 'reason', err)}") from None

    def get(self, url: str, *, auth: bool = True) -> Response:
        return self.call("GET", url, auth=auth)

    def post(self, url: str, body: dict) -> Response:
        return self.call("POST", url, body)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def error_message(response: Response) -> str:
    error = response.body.get("error")
    if isinstance(error, dict):
        return f"HTTP {response.status}: {error.get('message', '')}".strip()
    return f"HTTP {response.status}"
