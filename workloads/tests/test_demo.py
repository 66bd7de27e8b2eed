"""The demo's contract: exactly one JSON line per run on stdout, the second run processing nothing."""

import json

from workloads.etl import demo


def test_demo_prints_one_summary_line_per_run(tmp_path, capsys):
    assert demo.main(["--workdir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"processed_files": 3, "valid_rows": 113, "quarantined_rows": 7},
        {"processed_files": 0, "valid_rows": 0, "quarantined_rows": 0},
    ]
    assert len(list((tmp_path / "outbox").glob("mail-*.json"))) == 1
