"""`--precision int8`: per-channel dynamic int8 quantisation of a family's graphs, done once at build time.

Every MatMul with a constant weight in the graphs the family quantises (its exporter's `int8_roles`) is
quantised, one scale per output channel: for ViT + GPT-2, ViT's linear layers, GPT-2's Conv1D layers
(exported as MatMul + Add for this), the cross-attention key/value projection and the vocabulary
projection. Attention's activation x activation products stay float32.

A tied token embedding (the exporter's `shared_vocabulary`, e.g. GPT-2's): the decoder looks tokens up in
the same (hidden x vocab) matrix the vocabulary
projection multiplies by. Quantising the MatMul leaves the float32 matrix in the graph for that lookup
(154 MB for GPT-2); quantising the Gather as well would make the projection per-tensor. So after
quantisation the lookup is rewired to the projection's int8 matrix: gather the token's int8 column and
its scale, multiply (zero points of symmetric int8 are 0), and the float32 copy is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path


def quantise_graphs(directory: Path, names: Iterable[str], *, shared_vocabulary: str | None = None) -> None:
    """Replace the graphs `names` in `directory` by their int8 versions; where a graph gathers token
    embeddings from `shared_vocabulary`, the lookup is rewired to the int8 matrix."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantiser logs a line per skipped node
    for name in names:
        graph = directory / name
        quantised = graph.with_suffix(".int8.onnx")
        quantize_dynamic(
            graph,
            quantised,
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            extra_options={"MatMulConstBOnly": True},
        )
        if shared_vocabulary is not None:
            share_quantised_vocabulary(quantised, shared_vocabulary)
        quantised.replace(graph)


def share_quantised_vocabulary(path: Path, vocabulary: str) -> bool:
    """Rewire the token lookup to the int8 vocabulary matrix and drop its float32 copy; False when the
    graph has no such lookup (an untied embedding)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    quantised, scale, zero_point = (
        f"{vocabulary}_quantized",
        f"{vocabulary}_scale",
        f"{vocabulary}_zero_point",
    )
    lookups = [node for node in graph.node if node.op_type == "Gather" and node.input[0] == vocabulary]
    if not lookups or not {quantised, scale, zero_point} <= initializers.keys():
        return False
    if np.any(numpy_helper.to_array(initializers[zero_point])):
        return False  # asymmetric weights: keep the float32 lookup
    for lookup in lookups:
        ids, output = lookup.input[1], lookup.output[0]
        prefix = f"{lookup.name or output}_int8"
        replacement = [
            helper.make_node(
                "Gather", [quantised, ids], [f"{prefix}_columns"], axis=1, name=f"{prefix}_gather"
            ),
            helper.make_node("Gather", [scale, ids], [f"{prefix}_scales"], axis=0, name=f"{prefix}_scales"),
            helper.make_node("Cast", [f"{prefix}_columns"], [f"{prefix}_float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{prefix}_float", f"{prefix}_scales"], [output], name=f"{prefix}_mul"),
        ]
        position = list(graph.node).index(lookup)
        graph.node.remove(lookup)
        for offset, node in enumerate(replacement):
            graph.node.insert(position + offset, node)
    if not any(vocabulary in node.input for node in graph.node):
        graph.initializer.remove(initializers[vocabulary])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return True
