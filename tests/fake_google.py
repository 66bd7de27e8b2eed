"""A fake of Google's (and GitHub's) HTTPS APIs at the transport level: `urlopen` itself, autospecced.

    api = FakeApis({"GET https://cloudbilling.googleapis.com/v1/projects/p/billingInfo": (200, {...})})
    with api.installed():              # patches dataplatform.tools.gcp_http.urlopen
        ...
    api.calls                          # ["GET https://...", ...]

Unlisted URLs answer 404. A route's value may be a callable taking the JSON body sent (POSTs).
"""

from __future__ import annotations

import contextlib
import io
import json
from email.message import Message
from unittest import mock
from urllib.error import HTTPError
from urllib.request import Request, urlopen
from urllib.response import addinfourl


class FakeApis:
    def __init__(self, routes: dict):
        self.routes = dict(routes)
        self.calls: list[str] = []
        self.headers: list[dict] = []

    def answer(self, request: Request, timeout: float | None = None):
        key = f"{request.get_method()} {request.full_url}"
        self.calls.append(key)
        self.headers.append(dict(request.header_items()))
        route = self.routes.get(key, (404, {"error": {"code": 404, "message": "not found"}}))
        if callable(route):
            route = route(json.loads(request.data) if request.data else None)
        status, body = route
        raw = json.dumps(body).encode()
        if status >= 400:
            raise HTTPError(request.full_url, status, "error", Message(), io.BytesIO(raw))
        return addinfourl(io.BytesIO(raw), Message(), request.full_url, status)

    @contextlib.contextmanager
    def installed(self):
        fake = mock.create_autospec(urlopen, side_effect=self.answer)
        with mock.patch("dataplatform.tools.gcp_http.urlopen", fake):
            yield fake
