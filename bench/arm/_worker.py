"""The guest side of the ARM functional check: ``python3.11 _worker.py RUNTIME MODEL THREADS OPTIONS_JSON``.

Runs under qemu-user on the aarch64 Python of bench/arm/env.py, where only numpy and the one
runtime are importable: so this file imports nothing from the project, except runtimes/litert_io.py
(numpy alone), loaded by path, for how a ``.tflite`` is fed and read. It opens one session and
answers requests on stdin/stdout until stdin closes. An empty MODEL only imports the runtime (the probe
of a runtime whose files this host cannot make, e.g. a ``.tflite``).

Frames: the host sends ``<u64 length><npz of one feed>`` (length 0 = quit); the worker answers
``<1 byte kind><u64 length><payload>``: ``J`` JSON (the first frame: what runs), ``O`` an npz of
the outputs (``0``, ``1``, ... in the model's output order), ``E`` an error text.
"""
from __future__ import annotations

import io
import json
import os
import platform
import struct
import sys

import numpy as np

LEN = struct.Struct("<Q")


def ort_session(model: str, threads: int, options: dict):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    so.graph_optimization_level = levels[options.get("graph_optimization", "all")]
    sess = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    info = {"runtime": "onnxruntime", "version": ort.__version__, "providers": sess.get_providers()}
    return (lambda feed: sess.run(names, feed)), info


def openvino_session(model: str, threads: int, options: dict):
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": options.get("precision", "f32")}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)

    def run(feed):
        result = request.infer(feed)
        return [np.asarray(result[o]) for o in outputs]

    precision = compiled.get_property("INFERENCE_PRECISION_HINT")
    name = precision.get_type_name() if hasattr(precision, "get_type_name") else str(precision)
    info = {"runtime": "openvino", "version": ov.get_version(), "precision": name}
    return run, info


def _litert_io():
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtimes", "litert_io.py")
    spec = importlib.util.spec_from_file_location("litert_io", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def litert_session(model: str, threads: int, options: dict):
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    info = {"runtime": "litert", "version": getattr(ai_edge_litert, "__version__", "")}
    if not model:
        return None, info
    lio = _litert_io()
    with open(os.path.join(os.path.dirname(model), lio.SIGNATURE)) as f:
        signature = json.load(f)
    interpreter = Interpreter(model_path=model, num_threads=threads)
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner(options.get("signature") or None)
    io_ = lio.SignatureIO(signature, runner.get_input_details(), runner.get_output_details())
    ops = lio.executed_ops(interpreter._get_ops_details(), [d["index"] for d in interpreter.get_output_details()])
    info.update(lio.delegation_info(ops, threads), quant=signature.get("quant"))

    def run(feed):
        slates, n = io_.bind(feed)
        return io_.outputs([runner(**slate) for slate in slates], n)

    return run, info


SESSIONS = {"onnxruntime": ort_session, "openvino": openvino_session, "litert": litert_session}


def _read_exact(stream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _send(out, kind: bytes, payload: bytes) -> None:
    out.write(kind + LEN.pack(len(payload)) + payload)
    out.flush()


def main(argv: list[str]) -> int:
    runtime, model, threads, options = argv[0], argv[1], int(argv[2]), json.loads(argv[3])
    out = os.fdopen(os.dup(1), "wb")  # the protocol's channel; anything a library prints goes to stderr
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    try:
        run, info = SESSIONS[runtime](model, threads, options)
    except Exception as exc:  # noqa: BLE001 - reported to the host as the session's failure
        _send(out, b"E", f"{type(exc).__name__}: {exc}".encode())
        return 1
    info.update(machine=platform.machine(), python=platform.python_version(), numpy=np.__version__)
    _send(out, b"J", json.dumps(info).encode())
    while True:
        try:
            (n,) = LEN.unpack(_read_exact(inp, LEN.size))
        except EOFError:
            return 0
        if n == 0:
            return 0
        try:
            with np.load(io.BytesIO(_read_exact(inp, n))) as z:
                feed = {k: z[k] for k in z.files}
            buf = io.BytesIO()
            np.savez(buf, **{str(i): np.asarray(o) for i, o in enumerate(run(feed))})
            _send(out, b"O", buf.getvalue())
        except Exception as exc:  # noqa: BLE001 - one feed's failure, reported; the host decides
            _send(out, b"E", f"{type(exc).__name__}: {exc}".encode())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
