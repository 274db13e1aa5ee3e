"""`--precision int8`: per-channel dynamic int8 quantisation of both graphs, done once at build time.

Every MatMul with a constant weight is quantised: ViT's linear layers, GPT-2's Conv1D layers (exported
as MatMul + Add for this), the cross-attention key/value projection and the vocabulary projection.
Attention's activation x activation products stay float32.
"""

from __future__ import annotations

import logging
from pathlib import Path

from handler.onnx_captioner import DECODER_FILE, ENCODER_FILE


def quantise_graphs(directory: Path) -> None:
    """Replace encoder.onnx and decoder_step.onnx in `directory` by their int8 versions."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantiser logs a line per skipped node
    for name in (ENCODER_FILE, DECODER_FILE):
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
        quantised.replace(graph)
