"""The per-pipeline state object: what is committed, what is failing, which load is in flight.

One JSON object at ``checkpoint_uri``, rewritten with compare-and-swap (read with its
generation, write with ``ifGenerationMatch``; 0 = must not exist)::

    {"version": 2, "pipeline": "orders",
     "files":    {uri: {"generation": "G", "status": "loaded|rejected", "committed_at": ts}},
     "attempts": {uri: {"generation": "G", "count": 2, "error": "...", "last_at": ts, "runs": [run_id, ...]}},
     "loads":    {run_id: {"job_id": "...", "started_at": ts, "files": [outcome, ...]}},
     "last_load_at": ts | null}

* ``files`` holds committed file versions until ``TOMBSTONE`` after they left the landing folder
  (archived, ``archived_at``; or no longer listed): a run that listed a file before another run
  committed and archived it must still find its entry when it claims a batch, or it would load
  the file a second time. A run whose listing is older than ``MAX_LISTING_AGE`` (the tombstone
  minus a margin for clock skew) claims nothing, so no claim can outlive the entry that guards
  it. The object therefore holds the files of the last few hours, not the history: its size and
  the work of reading it do not grow with the number of files ever landed. A file still listed
  in landing with a committed entry is a file whose archive step was interrupted; the next run
  archives it.
* ``attempts`` counts failed attempts per file version (read/parse failures, and load failures
  BigQuery blames on the file), at most one per run (``runs``: a retried step of a run counts
  nothing twice); at ``max_file_attempts`` the file is quarantined whole.
* ``loads`` is a write-ahead record: a run claims its batch and names its load job here
  *before* creating the job. Whoever finds a record (a retried bundle, the next run after a
  crash) resolves it by that job id: done -> the files are committed; failed -> the record is
  dropped and the files are pending again; absent -> the job is created under that id (at
  most one creation can succeed). A file claimed by a record is not put in another batch, so
  no file version is ever appended by two jobs.

Generations are strings so JSON readers without 64-bit integers keep them exact. Version 1
objects (every committed file ever, no archive) are read as version 2: their entries are
committed files, archived (and so dropped) by the first run that sees them in landing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from typing import Any, Callable, Iterable, Mapping, TypeVar

from .storage import ObjectRef, ObjectStore, PreconditionFailed

LOG = logging.getLogger(__name__)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_COMMIT_ATTEMPTS = 10
TOMBSTONE = dt.timedelta(hours=6)
"""How long a committed entry outlives its file's removal from landing."""
MAX_LISTING_AGE = dt.timedelta(hours=5)
"""A run claims a load batch only from a listing younger than this (TOMBSTONE minus a skew margin)."""
T = TypeVar("T")


def empty(pipeline: str) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "pipeline": pipeline, "files": {}, "attempts": {}, "loads": {}, "last_load_at": None}


def parse(data: bytes | None, pipeline: str) -> dict[str, Any]:
    if data is None:
        return empty(pipeline)
    state = json.loads(data)
    if state.get("version") not in READABLE_VERSIONS or not isinstance(state.get("files"), dict):
        raise ValueError(f"unsupported checkpoint format: version {state.get('version')!r}")
    if state.get("pipeline") != pipeline:
        raise ValueError(f"checkpoint belongs to pipeline {state.get('pipeline')!r}, not {pipeline!r}")
    upgraded = empty(pipeline)
    upgraded.update({k: v for k, v in state.items() if k in upgraded})
    upgraded["version"] = FORMAT_VERSION
    return upgraded


def load(store: ObjectStore, uri: str, pipeline: str) -> dict[str, Any]:
    data, _ = store.read(uri)
    return parse(data, pipeline)


def now_iso(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).isoformat()


def recorded_generation(state: Mapping[str, Any], uri: str) -> int:
    entry = state["files"].get(uri)
    return int(entry["generation"]) if entry else 0


def is_done(state: Mapping[str, Any], ref: ObjectRef) -> bool:
    return recorded_generation(state, ref.uri) >= ref.generation and ref.uri in state["files"]


def claimed(state: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(uri, generation) of every file version in a recorded load batch."""
    return {(f["uri"], str(f["generation"])) for load in state["loads"].values() for f in load["files"]}


def attempts(state: Mapping[str, Any], ref: ObjectRef) -> int:
    entry = state["attempts"].get(ref.uri)
    return int(entry["count"]) if entry and entry.get("generation") == str(ref.generation) else 0


def pending(state: Mapping[str, Any], listing: Iterable[ObjectRef]) -> list[ObjectRef]:
    """Listed versions not committed and not claimed by a recorded load batch, oldest first."""
    taken = claimed(state)
    todo = [ref for ref in listing if not is_done(state, ref) and (ref.uri, str(ref.generation)) not in taken]
    return sorted(todo, key=lambda r: (r.created, r.uri))


def update(store: ObjectStore, uri: str, pipeline: str, change: Callable[[dict[str, Any]], T]) -> T:
    """Apply ``change(state)`` (it mutates and returns a result) with compare-and-swap, retrying races.

    ``change`` is re-run on a fresh read after a lost race, so it must decide from the state
    it is given, never from what an earlier call saw.
    """
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        data, generation = store.read(uri)
        state = parse(data, pipeline)
        before = json.dumps(state, indent=1, sort_keys=True)
        result = change(state)
        body = json.dumps(state, indent=1, sort_keys=True)
        if body == before:
            return result  # nothing changed: no write, no new object version
        try:
            store.write_if_generation_match(uri, body.encode("utf-8"), generation)
            return result
        except PreconditionFailed:
            LOG.info("state %s changed concurrently (attempt %d); merging again", uri, attempt + 1)
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.random())
    raise RuntimeError(f"could not update state {uri} after {MAX_COMMIT_ATTEMPTS} attempts")


def add_committed(state: dict[str, Any], outcomes: Iterable[Mapping[str, Any]], stamp: str) -> list[Mapping[str, Any]]:
    """Record file versions as committed; return those this call added (newer than what is recorded).

    Never moves an entry backwards: a newer version committed by another run wins.
    """
    added = []
    for o in outcomes:
        if is_done(state, ObjectRef(o["uri"], int(o["generation"]))):
            continue
        state["files"][o["uri"]] = {"generation": str(o["generation"]), "status": o["status"], "committed_at": stamp}
        entry = state["attempts"].get(o["uri"])
        if entry and int(entry["generation"]) <= int(o["generation"]):
            del state["attempts"][o["uri"]]
        added.append(o)
    return added


def commit(
    store: ObjectStore,
    uri: str,
    pipeline: str,
    outcomes: Iterable[Mapping[str, Any]],
    now: dt.datetime | None = None,
) -> list[Mapping[str, Any]]:
    """Record the given file outcomes; return the ones this call added (not already recorded)."""
    outcomes = [{"status": "loaded", **o} for o in outcomes]
    stamp = now_iso(now)
    return update(store, uri, pipeline, lambda state: add_committed(state, outcomes, stamp))


def count_failure(state: dict[str, Any], uri: str, generation: str, error: str, stamp: str, run_id: str) -> int:
    """One more failed attempt for this file version by run ``run_id``; returns the count (a new version starts at 1).

    The entry keeps the ids of the runs it counted, so counting the same run again (a retried
    step of that run, which settles the same outcomes once more) changes nothing: a file is
    quarantined after ``max_file_attempts`` real attempts, never fewer. The list stays as short
    as the count, which quarantine bounds.
    """
    entry = state["attempts"].get(uri)
    same_version = bool(entry) and entry.get("generation") == str(generation)
    runs = list(entry.get("runs", [])) if same_version else []
    if run_id in runs:
        return int(entry["count"])
    count = int(entry["count"]) + 1 if same_version else 1
    state["attempts"][uri] = {"generation": str(generation), "count": count, "error": error[:1000], "last_at": stamp,
                              "runs": runs + [run_id]}
    return count


def forget(state: dict[str, Any], listed_uris: set[str], listed_at: str, archived: Iterable[ObjectRef] = ()) -> None:
    """Mark what this run archived; drop entries that describe nothing left in landing for longer than TOMBSTONE.

    A committed entry is dropped only when its file is absent from a listing and it left landing
    (or was committed, if nobody saw it leave) more than TOMBSTONE before that listing: no run can
    still be about to claim it (see MAX_LISTING_AGE). Failed-attempt entries guard nothing: they
    go as soon as a listing made after them no longer shows the file.
    """
    mark_archived(state, archived, listed_at)
    horizon = (dt.datetime.fromisoformat(listed_at) - TOMBSTONE).isoformat()
    for uri in [u for u, e in state["files"].items() if u not in listed_uris and e.get("archived_at", e["committed_at"]) < horizon]:
        del state["files"][uri]
    for uri in [u for u, e in state["attempts"].items() if u not in listed_uris and e["last_at"] < listed_at]:
        del state["attempts"][uri]


def listing_too_old(listed_at: str, now: dt.datetime | None = None) -> bool:
    """True when a batch picked from this listing may no longer be claimed (its tombstones may be gone)."""
    return (now or dt.datetime.now(dt.timezone.utc)) - dt.datetime.fromisoformat(listed_at) > MAX_LISTING_AGE


def mark_archived(state: dict[str, Any], refs: Iterable[ObjectRef], stamp: str) -> None:
    """Stamp the committed entries of file versions just moved out of landing (they stay TOMBSTONE longer)."""
    for ref in refs:
        entry = state["files"].get(ref.uri)
        if entry and int(entry["generation"]) == ref.generation:
            entry.setdefault("archived_at", stamp)
