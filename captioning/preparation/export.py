"""`--runtime onnx`: a ViT + GPT-2 VisionEncoderDecoderModel -> the graphs
captioning/function/onnx_captioner.py runs.

Two graphs, written from the model's own submodules (weights, LayerNorms, activations) with the caches
as explicit tensors, exported with torch.onnx's TorchScript exporter (dynamo=False: the dynamo exporter
needs onnxscript, which is not installed):
- the encoder: pixel values -> each decoder layer's cross-attention keys/values (all layers' key/value
  projections as one matrix product), once per image;
- one decoder step: last token + self-attention cache + cross keys/values -> logits, log-probabilities and
  the new cache. The beams of an image attend together to its cross keys/values, stored once per image.
GPT-2's Conv1D layers are written as MatMul + Add (exported as Gemm, int8 quantisation would skip them);
the tied token embedding is stored once, transposed, serving both the vocabulary projection (MatMul) and
the token lookup (Gather along its second axis).

Models the graphs cannot reproduce exactly are refused before anything is exported (`check_exportable`),
and after export `verify` compares the graphs' captions with the torch model's, or the build fails.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from captioning.contract.model_files import ONNX_DECODER, ONNX_ENCODER, ONNX_MANIFEST, ONNX_TOKENIZER
from captioning.function.captioner import FAST_PATH_DECODERS
from captioning.function.generation import UnsupportedGeneration, generation_from_config, unsupported_settings
from captioning.function.onnx_captioner import MANIFEST_FORMAT
from captioning.function.pixels import Pixels, UnsupportedProcessor
from captioning.preparation.errors import refuse_onnx

SUPPORTED_ENCODERS = ("vit",)
SUPPORTED_ACTIVATIONS = ("gelu_new", "gelu", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu", "tanh")
OPSET = 17
_PUNCTUATION_PROBE = "a dog , isn't it ? yes . they 're here ! it 's one 've"


def config_problems(config: object) -> list[str]:
    """What in a transformers config the exporter cannot reproduce (empty: exportable)."""
    model_type = getattr(config, "model_type", None)
    if model_type != "vision-encoder-decoder":
        return [f"model family {model_type!r} (only vision-encoder-decoder: ViT encoder + GPT-2 decoder)"]
    encoder, decoder = config.encoder, config.decoder
    problems = []
    if encoder.model_type not in SUPPORTED_ENCODERS:
        problems.append(f"encoder {encoder.model_type!r} (supported: {', '.join(SUPPORTED_ENCODERS)})")
    if decoder.model_type not in FAST_PATH_DECODERS:
        problems.append(f"decoder {decoder.model_type!r} (supported: {', '.join(FAST_PATH_DECODERS)})")
        return problems
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


def _pixel_settings(processor: object) -> dict:
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


def _clean_up_setting(tokenizer: object) -> bool:
    """Whether transformers' decode applies clean_up_tokenization for this tokenizer, as observed."""
    from captioning.function.onnx_captioner import clean_up_tokenization

    ids = tokenizer(_PUNCTUATION_PROBE, add_special_tokens=False)["input_ids"]
    raw = tokenizer.backend_tokenizer.decode(ids, skip_special_tokens=True)
    expected = tokenizer.decode(ids, skip_special_tokens=True)
    if expected == raw and expected != clean_up_tokenization(raw):
        return False
    if expected == clean_up_tokenization(raw) and expected != raw:
        return True
    if expected == raw:  # the probe does not tell: the probe's text has no cleanable spaces
        return False
    raise refuse_onnx(f"the tokenizer's decoding post-processing ({raw!r} decodes to {expected!r})")


def store_weights_beside_graphs(directory: Path) -> None:
    """Move each graph's weights into `<graph>.data` beside it (ONNX external data). ONNX Runtime then
    reads them straight into its tensors instead of first parsing a protobuf as large as the weights:
    measured on the GPT-2-size graphs, 1.16 GB instead of 1.39 GB resident after loading, and about half
    the load time. Files are made world-readable (Lambda runs the function as a non-root user)."""
    import onnx

    for name in (ONNX_ENCODER, ONNX_DECODER):
        graph = directory / name
        data = graph.with_name(graph.name + ".data")
        model = onnx.load(str(graph))  # with any external data it already had
        data.unlink(missing_ok=True)  # onnx appends to an existing data file
        onnx.save(model, str(graph), save_as_external_data=True, location=data.name, size_threshold=1024)
        for path in (graph, data):
            path.chmod(0o644)


def export_onnx(source: Path, output: Path, *, precision: str, check_images: int = 4) -> None:
    """Export, verify (float32 captions equal the torch model's) and, for int8, quantise into `output`."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    transformers.utils.logging.set_verbosity_error()  # generate()'s per-call attention-mask advice
    transformers.utils.logging.disable_progress_bar()
    problems = config_problems(AutoConfig.from_pretrained(source, local_files_only=True))
    if problems:
        raise refuse_onnx("; ".join(problems))
    model = VisionEncoderDecoderModel.from_pretrained(source, local_files_only=True, dtype=torch.float32)
    model.eval()
    processor = AutoImageProcessor.from_pretrained(source, backend="pil", local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise refuse_onnx(f"a tokenizer without tokenizer.json ({type(tokenizer).__name__})")
    generation_config = model.generation_config.to_diff_dict()
    generation_config.pop("transformers_version", None)
    unsupported = unsupported_settings(model.generation_config.to_dict())
    if unsupported:
        raise refuse_onnx("generation settings " + ", ".join(unsupported))
    start = model.generation_config.decoder_start_token_id
    if start is None:
        start = model.config.decoder_start_token_id
    try:
        generation_from_config(
            generation_config, num_beams=None, max_length=None, decoder_start_token_id=start
        )
        pixels = Pixels.from_settings(_pixel_settings(processor))
    except (UnsupportedGeneration, UnsupportedProcessor) as problem:
        raise refuse_onnx(str(problem)) from problem

    decoder_config = model.config.decoder
    manifest = {
        "format": MANIFEST_FORMAT,
        "precision": "fp32",
        "layers": decoder_config.n_layer,
        "heads": decoder_config.n_head,
        "head_dim": decoder_config.n_embd // decoder_config.n_head,
        "decoder_start_token_id": int(start),
        "pixels": pixels.to_settings(),
        "clean_up_tokenization_spaces": _clean_up_setting(tokenizer),
    }
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work_dir:
        staging = Path(work_dir)
        from captioning.preparation.graphs import export_graphs

        export_graphs(model, staging, opset=OPSET)
        store_weights_beside_graphs(staging)
        tokenizer.save_pretrained(staging)
        processor.save_pretrained(staging)
        model.config.save_pretrained(staging)
        generation_config["decoder_start_token_id"] = int(start)
        (staging / "generation_config.json").write_text(json.dumps(generation_config, indent=2) + "\n")
        (staging / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if not (staging / ONNX_TOKENIZER).is_file():
            raise refuse_onnx("a tokenizer that does not save a tokenizer.json")

        from captioning.preparation.verify import verify_against_torch

        verify_against_torch(model, processor, tokenizer, staging, count=check_images)
        if precision == "int8":
            from captioning.preparation.quantise import quantise_graphs

            quantise_graphs(staging)
            store_weights_beside_graphs(staging)
            manifest["precision"] = "int8"
            (staging / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            from captioning.function.onnx_captioner import OnnxCaptioner
            from captioning.preparation.verify import verification_images

            OnnxCaptioner.load(staging, precision=precision).caption(
                verification_images(2)
            )  # the shipped int8 graphs run
        for path in staging.iterdir():
            shutil.move(str(path), output / path.name)
