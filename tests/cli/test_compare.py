"""`odbench compare` on real files in real processes: a byte-identical copy is SAME, added work is SLOWER.

Under the load of a shared machine these can only fail when the paired design is wrong: the copy's interval
must stay inside the ±3% margin and the slower model's paired interval must meet the isolated design's."""
from __future__ import annotations

import json
import shutil

import pytest

from odbench.cli import main
from odbench.core.paired import PairedMember, PairedSpec
from odbench.core.records import Feeds, sha256_file
from odbench.devices.catalog import get_profile
from odbench.stats.paired import PairedVerdict, Sequential
from odbench.verdicts import compare as cmp
from tests.bench.test_paired_cell import make_stack_onnx


def _member(role, path, **opts):
    return PairedMember(f"{role}=t", str(path), sha256_file(path), "onnxruntime", opts)


@pytest.mark.slow
def test_a_byte_identical_copy_is_same_within_the_margin(tmp_path, capsys):
    # 4 x 512-wide MatMuls at batch 8: about 0.2 ms an inference, the zoo ranker's regime. At 128 wide (about 20 us)
    # whole processes of identical copies intermittently ran 5-10% apart (2 of 12 once): the paired design assumes
    # the per-process ratio is not bimodal, which microsecond-scale models can break (docs/paired.md).
    base = make_stack_onnx(tmp_path / "base.onnx", layers=4, width=512)
    copy = tmp_path / "copy.onnx"
    shutil.copyfile(base, copy)
    # One look of 24 processes. Each process loads the two copies in a turned order (bench/paired_cell.py): the
    # member loaded second ran about 1% slower on this model, so with a fixed order the copy's interval drifted
    # out of ±3% (a CI failure). Turned, on the Xeon: 6 runs of 24 processes (2 quiet, 4 at load 5-8), all SAME
    # and inside ±2% (docs/paired.md, "Load order"). The interval is asserted inside the ±3% margin, which is what SAME means.
    code = main(["compare", str(base), str(copy), "--dim", "batch=8", "--looks", "24", "--max-time", "0.6",
                 "--out", str(tmp_path / "out")])
    out = json.loads((tmp_path / "out" / "comparison.json").read_text())
    effect = out["effect"]
    assert effect["verdict"] == "SAME", capsys.readouterr().out
    assert code == 0
    assert 1 / 1.03 < effect["lo"] <= effect["ratio"] <= effect["hi"] < 1.03
    assert "SAME" in capsys.readouterr().out
    assert list((tmp_path / "out" / "paired").glob("*.samples.npz"))


@pytest.mark.slow
def test_added_work_is_slower_and_agrees_with_the_isolated_design(tmp_path):
    base = make_stack_onnx(tmp_path / "base.onnx", layers=4)
    cand = make_stack_onnx(tmp_path / "cand.onnx", layers=6)  # 1.5x the matmuls
    spec = PairedSpec("t", "synthetic", get_profile("host").model_dump(mode="json"),
                      (_member("base", base), _member("cand", cand)), Feeds(dims=(("batch", 8),)),
                      warmup_s=0.2, min_rounds=100, min_time_s=0.3, max_time_s=0.6)
    # the validation: 8 paired processes interleaved with 8 isolated a side (the signed-rank test needs 7 or more to
    # reach 1% one-sided, 6 for a 95% interval)
    c = cmp.compare(spec, Sequential((6, 12)), isolated=8, log=lambda _: None)
    assert c.effect is not None and c.isolated is not None, c.error
    assert c.effect.verdict == PairedVerdict.SLOWER and c.effect.lo > 1.1
    # the two designs estimate the same ratio: their 95% intervals meet
    assert c.effect.lo <= c.isolated.hi and c.isolated.lo <= c.effect.hi, (c.effect, c.isolated)
    assert set(c.pairing_cost) == {m.key for m in spec.members}
    assert cmp.exit_code(c) == 1


def test_bad_input_is_a_one_line_usage_error(tmp_path, capsys):
    base = make_stack_onnx(tmp_path / "base.onnx", layers=1)
    assert main(["compare", str(base), str(tmp_path / "missing.onnx")]) == 2
    assert main(["compare", str(base), "no-such-model/fp32"]) == 2
    assert main(["compare", str(base), str(base), "--looks", "5,3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("odbench: error:") for line in err)


@pytest.mark.slow  # a subprocess matrix: make test runs it, the quick loop does not
def test_two_runtimes_use_the_isolated_design_and_say_so(tmp_path, capsys):
    pytest.importorskip("openvino")
    base = make_stack_onnx(tmp_path / "base.onnx", layers=2, width=32)
    code = main(["compare", str(base), str(base), "--cand-runtime", "openvino", "--dim", "batch=4", "--isolated", "2",
                 "--max-time", "0.2", "--out", str(tmp_path / "out")])
    out = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert out["effect"]["design"] == "isolated" and out["effect"]["k"] == 2, out
    assert code in (0, 1, 3)
    assert "isolated design" in capsys.readouterr().out
