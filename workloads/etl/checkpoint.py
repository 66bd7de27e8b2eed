"""The per-pipeline checkpoint: which landing file versions have been loaded.

One JSON object at ``checkpoint_uri``::

    {"version": 1, "pipeline": "orders",
     "files": {"gs://landing/orders/a.parquet": {"generation": "1712...", "valid_rows": 10,
                                                 "quarantined_rows": 2, "committed_at": "..."}}}

Generations are strings so JSON readers without 64-bit integers keep them exact.  A file is
pending while its current generation is not the recorded one, so a file overwritten in place
is new data and is loaded again; an unchanged file never is.

The checkpoint is advanced with compare-and-swap (read with generation, write with
``if_generation_match``), merging this run's files into whatever is there.  Concurrent runs
therefore never lose each other's entries, and exactly one run commits each file version: the
run that adds the entry is the one that reports it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from typing import Any, Iterable, Mapping

from .storage import ObjectRef, ObjectStore, PreconditionFailed

LOG = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_COMMIT_ATTEMPTS = 10


def parse(data: bytes | None, pipeline: str) -> dict[str, Any]:
    if data is None:
        return {"version": FORMAT_VERSION, "pipeline": pipeline, "files": {}}
    state = json.loads(data)
    if state.get("version") != FORMAT_VERSION or not isinstance(state.get("files"), dict):
        raise ValueError(f"unsupported checkpoint format: version {state.get('version')!r}")
    if state.get("pipeline") != pipeline:
        raise ValueError(f"checkpoint belongs to pipeline {state.get('pipeline')!r}, not {pipeline!r}")
    return state


def load(store: ObjectStore, uri: str, pipeline: str) -> dict[str, Any]:
    data, _ = store.read(uri)
    return parse(data, pipeline)


def is_done(state: Mapping[str, Any], ref: ObjectRef) -> bool:
    entry = state["files"].get(ref.uri)
    return entry is not None and entry.get("generation") == str(ref.generation)


def _recorded_generation(state: Mapping[str, Any], uri: str) -> int:
    entry = state["files"].get(uri)
    return int(entry["generation"]) if entry else 0


def pending(state: Mapping[str, Any], listing: Iterable[ObjectRef]) -> list[ObjectRef]:
    return sorted(ref for ref in listing if not is_done(state, ref))


def commit(
    store: ObjectStore,
    uri: str,
    pipeline: str,
    outcomes: Iterable[Mapping[str, Any]],
    now: dt.datetime | None = None,
) -> list[Mapping[str, Any]]:
    """Record the given file outcomes; return the ones this call added (not already recorded).

    Each outcome needs ``uri``, ``generation``, ``valid_rows`` and ``quarantined_rows``.
    Retries on a lost compare-and-swap race, re-reading and re-merging each time.
    """
    outcomes = list(outcomes)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        data, generation = store.read(uri)
        state = parse(data, pipeline)
        # Never move an entry backwards: a newer version committed by another run wins.
        added = [o for o in outcomes if _recorded_generation(state, o["uri"]) < int(o["generation"])]
        if not added:
            return []
        for o in added:
            state["files"][o["uri"]] = {
                "generation": str(o["generation"]),
                "valid_rows": o["valid_rows"],
                "quarantined_rows": o["quarantined_rows"],
                "committed_at": stamp,
            }
        body = json.dumps(state, indent=1, sort_keys=True).encode("utf-8")
        try:
            store.write_if_generation_match(uri, body, generation)
            return added
        except PreconditionFailed:
            LOG.info("checkpoint %s changed concurrently (attempt %d); merging again", uri, attempt + 1)
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.random())
    raise RuntimeError(f"could not advance checkpoint {uri} after {MAX_COMMIT_ATTEMPTS} attempts")
