"""`--precision int8`: per-channel dynamic int8 quantisation of both graphs, done once at build time.

Every MatMul with a constant weight is quantised, one scale per output channel: ViT's linear layers,
GPT-2's Conv1D layers (exported as MatMul + Add for this), the cross-attention key/value projection and
the vocabulary projection. Attention's activation x activation products stay float32.

The tied token embedding: the decoder looks tokens up in the same (hidden x vocab) matrix the vocabulary
projection multiplies by. Quantising the MatMul leaves the float32 matrix in the graph for that lookup
(154 MB for GPT-2); quantising the Gather as well would make the projection per-tensor. So after
quantisation the lookup is rewired to the projection's int8 matrix: gather the token's int8 column and
its scale, multiply (zero points of symmetric int8 are 0), and the float32 copy is dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER

VOCABULARY = "vocabulary_t"  # the DecoderStep parameter name (captioning/preparation/graphs.py)


def quantise_graphs(directory: Path) -> None:
    """Replace encoder.onnx and decoder_step.onnx in `directory` by their int8 versions."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantiser logs a line per skipped node
    for name in (ONNX_ENCODER, ONNX_DECODER):
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
        if name == ONNX_DECODER:
            share_quantised_vocabulary(quantised)
        quantised.replace(graph)


def share_quantised_vocabulary(path: Path) -> bool:
    """Rewire the token lookup to the int8 vocabulary matrix and drop its float32 copy; False when the
    graph has no such lookup (an untied embedding)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    quantised, scale, zero_point = (
        f"{VOCABULARY}_quantized",
        f"{VOCABULARY}_scale",
        f"{VOCABULARY}_zero_point",
    )
    lookups = [node for node in graph.node if node.op_type == "Gather" and node.input[0] == VOCABULARY]
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
    if not any(VOCABULARY in node.input for node in graph.node):
        graph.initializer.remove(initializers[VOCABULARY])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return True
