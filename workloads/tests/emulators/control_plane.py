"""In-memory Dataflow jobs API and Cloud Tasks queue, with their documented semantics, behind a
``requests`` transport adapter, so the launcher's real HTTP requests (URLs, bodies) reach them.

Dataflow (v1b3): ``flexTemplates:launch`` creates a job unless an *active* job with the same name
exists in the region (409 ALREADY_EXISTS, "There is already an active job named ..."); beyond
``quota`` active jobs in the project it answers 429 RESOURCE_EXHAUSTED. ``jobs:aggregated``
with ``filter=ACTIVE`` lists the active jobs of the project, paginated.

Cloud Tasks (v2): ``tasks.create`` with a name answers 409 ALREADY_EXISTS while a task of that
name exists or ran less than an hour ago. ``dispatch()`` delivers due tasks to the launcher the
way a queue with queue-level routing does (the task's body and headers, the X-CloudTasks-*
headers); a non-2xx answer keeps the task for a later attempt.

Used by the launcher tests and by ``make etl-bench``.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from requests.adapters import BaseAdapter

ACTIVE_STATES = {"JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_CANCELLING", "JOB_STATE_DRAINING"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class Job:
    id: str
    name: str
    location: str
    created: dt.datetime
    state: str = "JOB_STATE_QUEUED"
    body: dict = field(default_factory=dict)
    listed_at: dt.datetime | None = None

    def resource(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "location": self.location, "createTime": _iso(self.created),
                "currentState": self.state}


class DataflowSim:
    def __init__(self, quota: int = 25):
        self.quota = quota
        self.jobs: list[Job] = []
        self.launch_calls = 0
        self.max_active_per_name: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def active(self) -> list[Job]:
        return [j for j in self.jobs if j.state in ACTIVE_STATES]

    def launch(self, location: str, body: dict) -> tuple[int, dict]:
        name = body["launchParameter"]["jobName"]
        with self._lock:
            self.launch_calls += 1
            active = self.active()
            if any(j.name == name and j.location == location for j in active):
                message = f"There is already an active job named {name}. If you want to submit a second job, try again by setting a different name."
                return 409, {"error": {"code": 409, "status": "ALREADY_EXISTS", "message": message}}
            if len(active) >= self.quota:
                return 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "concurrent jobs quota"}}
            job = Job(f"2026-01-01_00_00_00-{next(self._ids)}", name, location, _now(), body=body)
            self.jobs.append(job)
            same = sum(1 for j in self.active() if j.name == name)
            self.max_active_per_name[name] = max(self.max_active_per_name.get(name, 0), same)
            return 200, {"job": job.resource()}

    def list_active(self) -> list[dict]:
        with self._lock:
            return [j.resource() for j in self.active()]

    def start(self, job: Job) -> None:
        """The job's ETL lists the landing folder now (what it covers is what landed before)."""
        job.state, job.listed_at = "JOB_STATE_RUNNING", _now()

    def finish(self, job: Job, state: str = "JOB_STATE_DONE") -> None:
        job.state = state

    def launched(self, name: str | None = None) -> list[Job]:
        return [j for j in self.jobs if name is None or j.name == name]


@dataclass
class Task:
    name: str
    body: bytes
    headers: dict[str, str]
    schedule: dt.datetime
    attempts: int = 0


class CloudTasksSim:
    DEDUP_WINDOW = dt.timedelta(hours=1)

    def __init__(self):
        self.tasks: dict[str, Task] = {}
        self.tombstones: dict[str, dt.datetime] = {}
        self.create_calls = 0
        self.created: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def create(self, queue: str, payload: dict) -> tuple[int, dict]:
        task = payload["task"]
        with self._lock:
            self.create_calls += 1
            name = task.get("name") or f"{queue}/tasks/auto-{next(self._ids)}"
            now = _now()
            if name in self.tasks or (name in self.tombstones and now - self.tombstones[name] < self.DEDUP_WINDOW):
                return 409, {"error": {"code": 409, "status": "ALREADY_EXISTS", "message": "Requested entity already exists"}}
            http = task["httpRequest"]
            schedule = dt.datetime.fromisoformat(task["scheduleTime"].replace("Z", "+00:00")) if task.get("scheduleTime") else now
            self.tasks[name] = Task(name, base64.b64decode(http.get("body", "")), dict(http.get("headers", {})), schedule)
            self.created.append(name)
            return 200, {"name": name}

    def dispatch(self, deliver: Callable[[bytes, dict[str, str]], int], now: dt.datetime | None = None) -> int:
        """Deliver every due task once; returns how many were acknowledged (2xx) and removed."""
        now = now or _now()
        with self._lock:
            due = [t for t in self.tasks.values() if t.schedule <= now]
        done = 0
        for task in due:
            task.attempts += 1
            headers = {**task.headers, "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[-1],
                       "X-CloudTasks-TaskRetryCount": str(task.attempts - 1),
                       "X-CloudTasks-TaskETA": f"{task.schedule.timestamp():.6f}"}
            status = deliver(task.body, headers)
            if 200 <= status < 300:
                with self._lock:
                    self.tasks.pop(task.name, None)
                    self.tombstones[task.name] = _now()
                done += 1
        return done


class ControlPlaneAdapter(BaseAdapter):
    """Routes the launcher's requests to the simulators; anything else is a test failure."""

    def __init__(self, dataflow: DataflowSim, tasks: CloudTasksSim):
        super().__init__()
        self.dataflow, self.tasks = dataflow, tasks
        self.requests: list[tuple[str, str, Any]] = []

    def send(self, request, **kwargs):
        body = json.loads(request.body) if request.body else None
        self.requests.append((request.method, request.url, body))
        url = request.url
        if m := re.fullmatch(r"https://dataflow\.googleapis\.com/v1b3/projects/[^/]+/locations/([^/]+)/flexTemplates:launch", url):
            status, payload = self.dataflow.launch(m[1], body)
        elif re.match(r"https://dataflow\.googleapis\.com/v1b3/projects/[^/]+/jobs:aggregated\?filter=ACTIVE", url):
            status, payload = 200, {"jobs": self.dataflow.list_active()}
        elif m := re.fullmatch(r"https://cloudtasks\.googleapis\.com/v2/(projects/[^/]+/locations/[^/]+/queues/[^/]+)/tasks", url):
            status, payload = self.tasks.create(m[1], body)
        else:
            raise AssertionError(f"unexpected request {request.method} {url}")
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(payload).encode()
        response.url = url
        response.request = request
        return response

    def close(self):
        pass


def session_for(adapter: ControlPlaneAdapter) -> requests.Session:
    s = requests.Session()
    s.mount("https://", adapter)
    return s
