"""Asking for the next run: a named Cloud Tasks task on the follow-up queue (or a local outbox).

A run that leaves work behind (files over its bounds, files to retry, a load deferred by the
daily load budget) asks for one more run *after itself*: task id = hash(pipeline, this run's
job id). The launcher, which also creates that very task when files land while this job runs,
de-duplicates into it, so a run has at most one follow-up however many reasons there are.
The queue delivers the task to the launcher, which launches when this job is no longer active
(Dataflow refuses a second active job of the pipeline's name).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from typing import Protocol

from workloads.launcher.launch_request import authorized_session, create_task, create_task_request, follow_up_task_id, run_request

LOG = logging.getLogger(__name__)


class FollowUps(Protocol):
    def request(self, pipeline: str, after_run: str, reason: str, not_before: dt.datetime | None = None) -> bool:
        """Ask for one run after ``after_run``; True if this call created the task (False: it existed)."""


@dataclass(frozen=True)
class CloudTasksFollowUps:
    queue: str

    def request(self, pipeline: str, after_run: str, reason: str, not_before: dt.datetime | None = None) -> bool:
        # False (ALREADY_EXISTS): the launcher asked for the same follow-up.
        return create_task(authorized_session().post, self.queue, run_request(pipeline, reason),
                           follow_up_task_id(pipeline, after_run), not_before)


@dataclass(frozen=True)
class OutboxFollowUps:
    """Local stand-in: one JSON file per task id (an existing file plays ALREADY_EXISTS)."""

    directory: str

    def request(self, pipeline: str, after_run: str, reason: str, not_before: dt.datetime | None = None) -> bool:
        task_id = follow_up_task_id(pipeline, after_run)
        url, body = create_task_request("projects/local/locations/local/queues/followups", run_request(pipeline, reason),
                                        task_id, schedule_time=not_before)
        os.makedirs(self.directory, exist_ok=True)
        try:
            with open(os.path.join(self.directory, f"{task_id}.json"), "x") as f:
                json.dump({"url": url, **body}, f, indent=1)
        except FileExistsError:
            return False
        return True

    def tasks(self) -> list[dict]:
        if not os.path.isdir(self.directory):
            return []
        return [json.load(open(os.path.join(self.directory, n))) for n in sorted(os.listdir(self.directory))]


def follow_ups_for(queue: str, outbox: str | None) -> FollowUps | None:
    if outbox:
        return OutboxFollowUps(outbox)
    return CloudTasksFollowUps(queue) if queue else None
