"""Local demo: the production pipeline on DirectRunner against local stand-ins, run twice.

    PIPENV_PIPFILE=workloads/Pipfile pipenv run python -m workloads.etl.demo [--workdir DIR]

Generates sample landing Parquet (with some invalid rows and a few files that are not data),
then runs the ETL twice.  Stand-ins: local folders for the buckets, a JSONL table directory for
BigQuery, a key file for Secret Manager, an outbox folder for SendGrid and a JSONL file for
Cloud Logging.  Prints one JSON line per run on stdout::

    {"processed_files": 3, "valid_rows": 113, "quarantined_rows": 7}
    {"processed_files": 0, "valid_rows": 0, "quarantined_rows": 0}

Everything else (where things are, what was loaded, the alert) goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .pipeline import run
from .reporting import read_run_log
from .table import LocalJsonlTable

PIPELINE = "orders"
SCHEMA = [
    {"name": "order_id", "type": "INTEGER", "mode": "REQUIRED", "min": 1, "max": None, "description": "Order number"},
    {"name": "customer", "type": "STRING", "mode": "REQUIRED", "min": None, "max": None, "description": "Customer id"},
    {"name": "amount", "type": "NUMERIC", "mode": "REQUIRED", "min": 0, "max": 100000, "description": "Total, EUR"},
    {"name": "quantity", "type": "INTEGER", "mode": "NULLABLE", "min": 1, "max": 1000, "description": "Items"},
    {"name": "discount", "type": "FLOAT", "mode": "NULLABLE", "min": 0, "max": 1, "description": "Discount ratio"},
    {"name": "paid", "type": "BOOLEAN", "mode": "NULLABLE", "min": None, "max": None, "description": "Paid yet"},
    {"name": "ordered_at", "type": "TIMESTAMP", "mode": "REQUIRED", "min": None, "max": None, "description": "Order time"},
    {"name": "ship_date", "type": "DATE", "mode": "NULLABLE", "min": None, "max": None, "description": "Shipping day"},
]
SUMMARY_KEYS = ("processed_files", "valid_rows", "quarantined_rows")


def _good_row(rng: random.Random, order_id: int) -> dict:
    ordered_at = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=rng.randrange(60 * 24 * 30))
    return {
        "order_id": order_id,
        "customer": f"C{rng.randrange(1000):04d}",
        "amount": Decimal(rng.randrange(100, 500_000)) / 100,
        "quantity": rng.randrange(1, 20),
        "discount": rng.choice([None, 0.0, 0.05, 0.1]),
        "paid": rng.choice([True, False, None]),
        "ordered_at": ordered_at,
        "ship_date": rng.choice([None, (ordered_at + dt.timedelta(days=2)).date()]),
    }


# Each breaks one rule of SCHEMA; the demo plants them at fixed positions.
_BREAKERS = [
    ("amount below min", lambda r: r.update(amount=Decimal("-5.00"))),
    ("missing required customer", lambda r: r.update(customer=None)),
    ("discount above max", lambda r: r.update(discount=1.5)),
    ("quantity below min", lambda r: r.update(quantity=0)),
    ("missing required ordered_at", lambda r: r.update(ordered_at=None)),
    ("two problems", lambda r: r.update(order_id=0, amount=Decimal("250000.00"))),
    ("amount with too many decimals", lambda r: r.update(amount=Decimal("1.0000000001"))),
]


def make_landing(landing: Path, seed: int = 7) -> dict:
    """Write three Parquet files (two with invalid rows) and some non-data files; return expectations."""
    rng = random.Random(seed)
    arrow = pa.schema(
        [
            ("order_id", pa.int64()), ("customer", pa.string()), ("amount", pa.decimal128(18, 10)),
            ("quantity", pa.int64()), ("discount", pa.float64()), ("paid", pa.bool_()),
            ("ordered_at", pa.timestamp("us", tz="UTC")), ("ship_date", pa.date32()),
        ]
    )
    files = {"2024/06/01/batch-001.parquet": (50, _BREAKERS[:4]), "2024/06/02/batch-002.parquet": (40, _BREAKERS[4:])}
    next_id, expected = 1, {"files": 0, "valid": 0, "quarantined": 0}
    for name, (count, breakers) in files.items():
        rows = [_good_row(rng, next_id + i) for i in range(count)]
        next_id += count
        for position, (_, breaker) in zip(range(3, count, 7), breakers):
            breaker(rows[position])
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow), path)
        expected["files"] += 1
        expected["valid"] += count - len(breakers)
        expected["quarantined"] += len(breakers)
    # A third producer writes amounts as float, naive timestamps and an extra column: all valid.
    rows = [_good_row(rng, next_id + i) for i in range(30)]
    for row in rows:
        row.update(amount=float(row["amount"]), ordered_at=row["ordered_at"].replace(tzinfo=None), channel="web")
    pq.write_table(pa.Table.from_pylist(rows), landing / "2024/06/02/batch-003.parquet")
    expected["files"] += 1
    expected["valid"] += 30
    # Not data: the ETL and the launcher both ignore these.
    (landing / "README.txt").write_text("not data\n")
    (landing / "2024/06/02/_SUCCESS").write_text("")
    return expected


def demo_args(root: Path) -> list[str]:
    """Pipeline arguments pointing every external system at its local stand-in under ``root``."""
    secret = root / "secrets" / "sendgrid-api-key"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("SG.local-demo-key\n")
    return [
        "--runner=DirectRunner",
        f"--pipeline={PIPELINE}",
        f"--landing_prefix={root / 'landing' / PIPELINE}/",
        f"--schema={json.dumps(SCHEMA)}",
        f"--output_table={root / 'bigquery' / PIPELINE}",
        f"--curated_prefix={root / 'curated' / PIPELINE}/",
        f"--quarantine_prefix={root / 'quarantine' / PIPELINE}/",
        f"--checkpoint_uri={root / 'control' / 'checkpoints' / PIPELINE}.json",
        f"--alert_secret={secret}",
        "--alert_to=data-team@example.com,oncall@example.com",
        "--alert_from=etl@example.com",
        f"--alert_outbox={root / 'outbox'}",
        f"--run_log={root / 'logs' / 'etl_run_summary.jsonl'}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="where to put the stand-ins (default: a new temp dir, kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="etl-demo-")).resolve()
    expected = make_landing(root / "landing" / PIPELINE)
    pipeline_args = demo_args(root)
    run_log = root / "logs" / "etl_run_summary.jsonl"
    print(f"demo workdir: {root}", file=sys.stderr)
    for _ in range(2):
        before = len(read_run_log(str(run_log)))
        run(pipeline_args)
        summaries = read_run_log(str(run_log))
        if len(summaries) != before + 1:
            raise SystemExit("the run did not write exactly one summary")
        print(json.dumps({key: summaries[-1][key] for key in SUMMARY_KEYS}), flush=True)
    table_rows = list(LocalJsonlTable(str(root / "bigquery" / PIPELINE)).rows())
    mails = sorted((root / "outbox").glob("mail-*.json"))
    print(
        f"expected {expected['files']} files, {expected['valid']} valid and {expected['quarantined']} invalid rows; "
        f"table now has {len(table_rows)} rows; {len(mails)} alert mail(s) in {root / 'outbox'}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
