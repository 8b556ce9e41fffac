"""Step 2: float and full-integer int8 TFLite models with batch size 1, and what is inside them.

    from export.quantize import calibration_items, to_tflite, graph_ops, check_int8_graph
    items = calibration_items(dataset, n=300, seed=0)          # real train images, stratified by class
    items = calibration_items(dataset, 300, other_class=True)  # non-office photos as one more class
    float_bytes = to_tflite(model, size=64)
    int8_bytes = to_tflite(model, size=64, calibration=x_calib)  # x_calib: uint8 (n, 64, 64, 3)
    problems = check_int8_graph(int8_bytes, model)              # [] when every op is int8

The int8 model takes and returns uint8 (LiteRT.js refuses signed int8 I/O), so the only ops that
touch a tensor other than int8/int32 are the QUANTIZE ops at its edges (uint8 <-> int8). The input signature is
fixed at [1, S, S, 3]: the phone runtime refuses a dynamic batch dimension.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from training.data.dataset import Dataset

# Keras layers that legitimately become an elementwise MUL/ADD/SUB op in the converted graph.
# BatchNormalization is not among them: after a convolution the converter folds it away.
ELEMENTWISE_OPS = {"MUL", "ADD", "SUB", "DIV"}
ELEMENTWISE_LAYERS = {"Normalization": 2, "Rescaling": 2, "Add": 1, "Subtract": 1, "Multiply": 1}


def calibration_items(dataset: Dataset, n: int, seed: int = 0, other_class: bool = False) -> list[tuple]:
    """Up to ``n`` train (path, label) pairs, as equal a share per class as the split allows.

    With ``other_class`` the non-office train photos are one more class (label N), so the
    activations a non-office photo causes, "other" winning included, are in the calibrated ranges.
    """
    rng = random.Random(seed)
    by_class: dict[int, list] = {}
    others = [(p, len(dataset.classes)) for p, _ in dataset.others_items("train")] if other_class else []
    for item in dataset.items("train") + others:
        by_class.setdefault(item[1], []).append(item)
    for items in by_class.values():
        rng.shuffle(items)
    chosen, depth = [], 0
    while len(chosen) < n and any(depth < len(v) for v in by_class.values()):
        for label in sorted(by_class):
            if depth < len(by_class[label]) and len(chosen) < n:
                chosen.append(by_class[label][depth])
        depth += 1
    return chosen


def converter_for(model, size: int, calibration: np.ndarray | None = None):
    """A TFLiteConverter for ``model`` at batch 1; int8 with uint8 I/O when calibration is given."""
    from training.tfenv import tf

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, size, size, 3], tf.float32, name="image"))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if calibration is not None:

        def representative():
            for x in calibration:
                yield [x[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter


def to_tflite(model, size: int, calibration: np.ndarray | None = None) -> bytes:
    return converter_for(model, size, calibration).convert()


def graph_ops(tflite: bytes) -> list[dict]:
    """Every op of the main subgraph with the dtypes of its tensors, read from the flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        ops.append(
            {
                "op": names.get(builtin, str(builtin)),
                "inputs": [types[graph.tensors[i].type] for i in op.inputs if i >= 0],
                "outputs": [types[graph.tensors[i].type] for i in op.outputs],
            }
        )
    return ops


def op_counts(ops: list[dict]) -> dict[str, int]:
    return dict(Counter(op["op"] for op in ops))


def check_int8_graph(tflite: bytes, model) -> list[str]:
    """Problems that make the int8 model not fully integer; an empty list means it is."""
    ops = graph_ops(tflite)
    problems = []
    for i, op in enumerate(ops):
        dtypes = set(op["inputs"] + op["outputs"])
        edge = op["op"] == "QUANTIZE" and (i == 0 or i == len(ops) - 1)
        allowed = {"uint8", "int8"} if edge else {"int8", "int32"}
        if not dtypes <= allowed:
            problems.append(f"op {i} {op['op']} has {sorted(dtypes - allowed)} tensors")
    if ops and not (ops[0]["op"] == "QUANTIZE" and ops[0]["inputs"] == ["uint8"]):
        problems.append("the graph does not start by quantizing a uint8 input")
    if ops and not (ops[-1]["op"] == "QUANTIZE" and ops[-1]["outputs"] == ["uint8"]):
        problems.append("the graph does not end by quantizing to a uint8 output")
    expected = sum(ELEMENTWISE_LAYERS.get(type(layer).__name__, 0) for layer in model.layers)
    elementwise = sum(1 for op in ops if op["op"] in ELEMENTWISE_OPS)
    if elementwise > expected:
        problems.append(
            f"{elementwise} elementwise MUL/ADD/SUB ops where the model's layers explain "
            f"{expected}: a BatchNormalization was not folded into its convolution"
        )
    return problems
