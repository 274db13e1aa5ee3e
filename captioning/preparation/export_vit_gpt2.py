"""The ViT + GPT-2 vision-encoder-decoder family at build time (nlpconnect/vit-gpt2-image-captioning).

Graphs (captioning/preparation/graphs.py): the encoder (pixel values -> every decoder layer's
cross-attention keys/values, all layers' key/value projections as one matrix product, once per image)
and one GPT-2 step with the self-attention cache as an explicit tensor. Run time:
captioning/function/onnx_vit_gpt2.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from captioning.function.pixels import Pixels, UnsupportedProcessor
from captioning.preparation.errors import refuse_onnx
from captioning.preparation.family_export import FamilyExporter, Loaded

SUPPORTED_ENCODERS = ("vit",)
SUPPORTED_ACTIVATIONS = ("gelu_new", "gelu", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu", "tanh")


def pixel_settings(processor: object) -> dict:
    """An image processor's settings as captioning/function/pixels.py reads them."""
    size = getattr(processor, "size", None)
    return {
        "do_resize": getattr(processor, "do_resize", None),
        "do_rescale": getattr(processor, "do_rescale", None),
        "do_normalize": getattr(processor, "do_normalize", None),
        "do_center_crop": getattr(processor, "do_center_crop", None),
        "do_pad": getattr(processor, "do_pad", None),
        "size": {"height": getattr(size, "height", None), "width": getattr(size, "width", None)},
        "resample": None if processor.resample is None else int(processor.resample),
        "rescale_factor": processor.rescale_factor,
        "image_mean": list(processor.image_mean) if processor.image_mean is not None else None,
        "image_std": list(processor.image_std) if processor.image_std is not None else None,
    }


def checked_pixels(processor: object) -> dict:
    """The pixel settings the runtime reproduces, or refuse naming what it does not."""
    try:
        return Pixels.from_settings(pixel_settings(processor)).to_settings()
    except UnsupportedProcessor as problem:
        raise refuse_onnx(str(problem)) from problem


def encoder_problems(encoder: object) -> list[str]:
    if encoder.model_type not in SUPPORTED_ENCODERS:
        return [f"encoder {encoder.model_type!r} (supported: {', '.join(SUPPORTED_ENCODERS)})"]
    return []


def generation_dict(generation_config: object) -> dict:
    """A GenerationConfig as generation_config.json holds it (what differs from the defaults)."""
    values = generation_config.to_diff_dict()
    values.pop("transformers_version", None)
    return values


class VisionEncoderDecoderExporter(FamilyExporter):
    """What every vision-encoder-decoder family shares: loading, the start token, reference captions."""

    def load(self, source: Path) -> Loaded:
        import torch
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

        model = VisionEncoderDecoderModel.from_pretrained(source, local_files_only=True, dtype=torch.float32)
        model.eval()
        processor = AutoImageProcessor.from_pretrained(source, backend="pil", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        generation = generation_dict(model.generation_config)
        start = model.generation_config.decoder_start_token_id
        if start is None:
            start = model.config.decoder_start_token_id
        if start is None:
            raise refuse_onnx("no decoder_start_token_id in the generation config or config.json")
        generation["decoder_start_token_id"] = int(start)
        return Loaded(model, processor, tokenizer, generation)

    def reference_pixel_values(self, loaded: Loaded, images: Sequence[Image.Image]) -> np.ndarray:
        return loaded.processor(images=list(images), return_tensors="np").pixel_values

    def reference(self, loaded, images, *, prompt, num_beams, max_length):
        import torch

        pixel_values = torch.from_numpy(self.reference_pixel_values(loaded, images))
        with torch.inference_mode():
            generated = loaded.model.generate(pixel_values, num_beams=num_beams, max_length=max_length)
        texts = loaded.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return generated.tolist(), [text.strip() for text in texts]

    def teacher_forced_log_probs(self, loaded, images, *, prompt, rows):
        import torch

        pixel_values = torch.from_numpy(self.reference_pixel_values(loaded, images))
        with torch.inference_mode():
            logits = loaded.model(pixel_values=pixel_values, decoder_input_ids=torch.tensor(rows)).logits
            return torch.log_softmax(logits.float(), dim=-1).numpy()


class VitGpt2Exporter(VisionEncoderDecoderExporter):
    family = "vit-gpt2"
    shared_vocabulary = "vocabulary_t"  # graphs.DecoderStep's parameter

    def problems(self, config: object) -> list[str]:
        encoder, decoder = config.encoder, config.decoder
        problems = encoder_problems(encoder)
        if getattr(decoder, "scale_attn_by_inverse_layer_idx", False):
            problems.append("GPT-2 option scale_attn_by_inverse_layer_idx=True")
        if getattr(decoder, "reorder_and_upcast_attn", False):
            problems.append("GPT-2 option reorder_and_upcast_attn=True")
        if decoder.activation_function not in SUPPORTED_ACTIVATIONS:
            problems.append(
                f"GPT-2 activation {decoder.activation_function!r}"
                f" (supported: {', '.join(SUPPORTED_ACTIVATIONS)})"
            )
        if not getattr(decoder, "add_cross_attention", False):
            problems.append("a GPT-2 decoder without cross-attention")
        if getattr(decoder, "cross_attention_hidden_size", None) is not None:
            problems.append(
                f"decoder.cross_attention_hidden_size={decoder.cross_attention_hidden_size}"
                " (an encoder-to-decoder projection other than the default one)"
            )
        return problems

    def manifest(self, loaded: Loaded) -> dict:
        decoder = loaded.model.config.decoder
        return {
            "layers": decoder.n_layer,
            "heads": decoder.n_head,
            "head_dim": decoder.n_embd // decoder.n_head,
            "decoder_start_token_id": loaded.generation_config["decoder_start_token_id"],
            "pixels": checked_pixels(loaded.processor),
        }

    def export_graphs(self, loaded: Loaded, directory: Path, *, opset: int) -> dict[str, str]:
        from captioning.preparation.graphs import export_graphs

        return export_graphs(loaded.model, directory, opset=opset)


EXPORTERS = {"vit-gpt2": VitGpt2Exporter}
