"""verdicts/ledger.py: reruns of a cell into fresh run folders are seen and counted as further looks."""
from __future__ import annotations

import json

import numpy as np
import yaml

from odbench.cli import main
from odbench.verdicts import ledger
from tests.verdicts.test_gate import FAST, _write_run, result


def test_reruns_into_new_folders_are_counted_as_looks_until_a_pass(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(ledger.ENV, raising=False)
    b = tmp_path / "b.yaml"
    b.write_text(yaml.safe_dump({"budgets": [{"scenario": "rank-50", "latency_ms": {"p95": 2}}]}))
    for name in ("run1", "run2"):  # 5 processes: INCONCLUSIVE each time (a PASS needs 57)
        _write_run(tmp_path / name, [result("rank-50", FAST, processes=5)])
        assert main(["gate", str(tmp_path / name), "--budgets", str(b)]) == 3
    looks = json.loads((tmp_path / "run2" / ledger.LOOKS_FILE).read_text())["cells"]
    (cell,) = looks.values()
    assert cell["fresh_runs"] == 2 and cell["earlier_looks"] == 1 and cell["earlier_runs"] == [str((tmp_path / "run1").resolve())]
    assert "look 2, 1 in earlier run folders" in json.loads((tmp_path / "run2" / "gate.json").read_text())["verdicts"][0]["reason"]
    # regating the same folder is not a fresh run
    assert main(["gate", str(tmp_path / "run2"), "--budgets", str(b)]) == 3
    assert json.loads((tmp_path / "run2" / ledger.LOOKS_FILE).read_text())["cells"][next(iter(looks))]["fresh_runs"] == 2
    # enough processes for look 3 (71): PASS (run1 and run2 before it); a PASS ends the sequence
    _write_run(tmp_path / "run3", [result("rank-50", [FAST[i::80] for i in range(80)])])
    assert main(["gate", str(tmp_path / "run3"), "--budgets", str(b)]) == 0
    assert "look 3, 2 in earlier run folders" in (tmp_path / "run3" / "gate.md").read_text()
    _write_run(tmp_path / "run4", [result("rank-50", FAST, processes=5)])
    main(["gate", str(tmp_path / "run4"), "--budgets", str(b)])
    assert json.loads((tmp_path / "run4" / ledger.LOOKS_FILE).read_text())["cells"][next(iter(looks))]["fresh_runs"] == 1
    capsys.readouterr()


def test_a_torn_ledger_line_is_skipped(tmp_path):
    path = tmp_path / "gate-ledger.jsonl"
    path.write_text('{"key": "x", "run": "/a", "looks": 2, "verdict": "INCONCLUSIVE"}\n{"key": "x", "ru')
    r = result("rank-50", np.ones(10), processes=2)
    assert ledger.earlier_looks(tmp_path / "b", [r], {}, path) == {}
