"""bench/paired_cell.py and bench/paired_run.py on real (tiny) ONNX models, in real processes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from odbench.bench import paired_run
from odbench.core.paired import PairedMember, PairedSpec
from odbench.core.records import Feeds, Verdict, sha256_file
from odbench.devices.catalog import get_profile
from tests.conftest import make_tiny_onnx


def make_stack_onnx(path: Path, layers: int, width: int = 128, seed: int = 0) -> Path:
    """y = relu(...relu(x @ W1)... @ Wn): ``layers`` matmuls of [batch, width] x [width, width]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"W{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"W{i}"], [f"h{i}"]), helper.make_node("Relu", [f"h{i}"], [f"r{i}"])]
        prev = f"r{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(nodes, "stack", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def spec_of(*paths_and_options, **kw) -> PairedSpec:
    members = tuple(PairedMember(f"t/{i}", str(p), sha256_file(p), "onnxruntime", dict(opts))
                    for i, (p, opts) in enumerate(paths_and_options))
    timing = dict(warmup_s=0.1, min_rounds=50, min_time_s=0.2, max_time_s=0.4)
    timing.update(kw)
    return PairedSpec("t", "synthetic", get_profile("host").model_dump(mode="json"), members,
                      Feeds(dims=(("batch", 8),)), **timing)


def test_every_paired_process_shares_one_ort_thread_pool_and_draws_a_fresh_order(tmp_path):
    a = make_tiny_onnx(tmp_path / "a.onnx", width=64)
    spec = spec_of((a, {}), (a, {"allow_spinning": True, "graph_optimization": "basic"}), (a, {"inter_op_threads": 1}))
    result = paired_run.run_group(spec, 3)
    assert result.verdict == Verdict.OK, result.reason
    assert len(result.processes) == 3
    for p in result.processes:
        # read back from every session of every process: one global pool, sized by the profile's threads
        pools = p.applied["paired_threads"]["ort_thread_pool"]
        assert set(pools) == {m.key for m in spec.members}
        assert all(v.startswith("global") for v in pools.values())
        assert all(info["thread_pool"].startswith("global") for info in p.runtime_info.values())
        assert {len(s) for s in p.samples_ms.values()} == {p.rounds * spec.turn}
    assert len({p.order_seed for p in result.processes}) == 3
    # the load order turns with the process: each member is loaded first by one of the three (placement varies)
    assert all(sorted(p.load_order) == sorted(m.key for m in spec.members) for p in result.processes)
    assert {p.load_order[0] for p in result.processes} == {m.key for m in spec.members}


def test_results_round_trip_through_the_run_folder(tmp_path):
    a = make_tiny_onnx(tmp_path / "a.onnx", width=16)
    spec = spec_of((a, {}), (a, {"graph_optimization": "basic"}), min_rounds=20)
    result = paired_run.run_group(spec, 2)
    paired_run.save(tmp_path / "run", result)
    [back] = paired_run.load_all(tmp_path / "run")
    assert back.spec == spec and back.verdict == Verdict.OK
    for p, q in zip(result.processes, back.processes):
        for key in p.samples_ms:
            assert np.allclose(p.samples_ms[key], q.samples_ms[key], rtol=1e-6)


def test_a_broken_member_is_the_groups_error_with_its_reason(tmp_path):
    a = make_tiny_onnx(tmp_path / "a.onnx", width=16)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    spec = spec_of((a, {}), (bad, {}))
    result = paired_run.run_group(spec, 2)
    assert result.verdict == Verdict.ERROR and "comparison process 1" in result.reason and result.processes == ()


def test_a_committed_version_1_group_reads_back_with_its_members_loaded_in_declaration_order():
    # results/ holds runs from before the seeded load order (schema 1): they must still read, and say how they loaded
    [path] = sorted(Path(__file__).parents[2].glob("results/reference-xeon-avx512-2c/paired/ctr-ml100k__onnxruntime__*.json"))
    assert json.loads(path.read_text())["schema_version"] == 1
    back = paired_run.load(path)
    declared = tuple(m.key for m in back.spec.members)
    assert back.processes and all(p.load_order == declared for p in back.processes)
    assert all(len(p.samples_ms) == len(declared) for p in back.processes)
