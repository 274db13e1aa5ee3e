"""`--runtime onnx`: a transformers captioning model -> the graphs captioning/function/onnx_captioner.py runs.

Shared by every family (captioning/preparation/family_export.py): the family is read from the model's
config, its exporter names what it cannot reproduce before any weights are loaded (the build is refused,
naming it and suggesting `runtime: torch`), then writes its graphs from the model's own submodules with
the caches as explicit tensors (TorchScript exporter, dynamo=False: the dynamo exporter needs onnxscript
and trips on transformers 5's cache classes). Here: each graph's weights are moved beside it (ONNX
external data), the manifest, tokenizer, processor, configs and generation config are written, the
float32 graphs are verified against transformers' `generate` (verify.py) and, for int8, quantised
(quantise.py) and run once.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from captioning.contract.model_files import ONNX_MANIFEST, ONNX_TOKENIZER
from captioning.function.generation import UnsupportedGeneration, generation_from_config
from captioning.function.onnx_captioner import MANIFEST_FORMAT
from captioning.function.onnx_sessions import OPTIMISED_INDEX
from captioning.preparation.errors import PreparationRefused, refuse_onnx
from captioning.preparation.family_export import exporter_for, family_for_config

OPSET = 17
_PUNCTUATION_PROBE = "a dog , isn't it ? yes . they 're here ! it 's one 've"


def config_problems(config: object) -> list[str]:
    """What in a transformers config the exporter cannot reproduce (empty: exportable)."""
    try:
        return exporter_for(family_for_config(config)).problems(config)
    except PreparationRefused as refusal:  # the family itself is not exportable
        return [refusal.what or str(refusal)]


def clean_up_setting(tokenizer: object) -> bool:
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


def store_weights_beside_graphs(directory: Path, names: Iterable[str]) -> None:
    """Move each graph's weights into `<graph>.data` beside it (ONNX external data). ONNX Runtime then
    reads them straight into its tensors instead of first parsing a protobuf as large as the weights:
    measured on the GPT-2-size graphs, 1.16 GB instead of 1.39 GB resident after loading, and about half
    the load time. Files are made world-readable (Lambda runs the function as a non-root user)."""
    import onnx

    for name in names:
        graph = directory / name
        data = graph.with_name(graph.name + ".data")
        model = onnx.load(str(graph))  # with any external data it already had
        data.unlink(missing_ok=True)  # onnx appends to an existing data file
        onnx.save(model, str(graph), save_as_external_data=True, location=data.name, size_threshold=1024)
        for path in (graph, data):
            if path.exists():
                path.chmod(0o644)


def export_onnx(source: Path, output: Path, *, precision: str, check_images: int = 4) -> None:
    """Export, verify (float32 captions equal the torch model's) and, for int8, quantise into `output`."""
    import transformers
    from transformers import AutoConfig

    transformers.utils.logging.set_verbosity_error()  # generate()'s per-call attention-mask advice
    transformers.utils.logging.disable_progress_bar()
    config = AutoConfig.from_pretrained(source, local_files_only=True)
    family = family_for_config(config)
    exporter = exporter_for(family)
    problems = exporter.problems(config)
    if problems:
        raise refuse_onnx("; ".join(problems))
    loaded = exporter.load(source)
    tokenizer = loaded.tokenizer
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise refuse_onnx(f"a tokenizer without tokenizer.json ({type(tokenizer).__name__})")
    family_manifest = exporter.manifest(loaded)
    try:
        generation_from_config(
            loaded.generation_config,
            num_beams=None,
            max_length=None,
            decoder_start_token_id=family_manifest["decoder_start_token_id"],
            max_position_embeddings=family_manifest.get("max_position_embeddings"),
        )
    except UnsupportedGeneration as problem:
        raise refuse_onnx(str(problem)) from problem
    manifest = {
        "format": MANIFEST_FORMAT,
        "family": family,
        "precision": "fp32",
        **family_manifest,
        "clean_up_tokenization_spaces": clean_up_setting(tokenizer),
    }
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work_dir:
        staging = Path(work_dir)
        graphs = exporter.export_graphs(loaded, staging, opset=OPSET)
        manifest["graphs"] = graphs
        store_weights_beside_graphs(staging, graphs.values())
        tokenizer.save_pretrained(staging)
        loaded.processor.save_pretrained(staging)
        loaded.model.config.save_pretrained(staging)
        (staging / "generation_config.json").write_text(json.dumps(loaded.generation_config, indent=2) + "\n")
        (staging / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if not (staging / ONNX_TOKENIZER).is_file():
            raise refuse_onnx("a tokenizer that does not save a tokenizer.json")

        from captioning.preparation.verify import verify_against_torch

        verify_against_torch(exporter, loaded, staging, count=check_images)
        if precision == "int8":
            from captioning.preparation.quantise import quantise_graphs

            quantised = [graphs[role] for role in exporter.int8_roles if role in graphs]
            quantise_graphs(staging, quantised, shared_vocabulary=exporter.shared_vocabulary)
            store_weights_beside_graphs(staging, quantised)
            manifest["precision"] = "int8"
            manifest["int8_graphs"] = quantised
            (staging / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
            from captioning.function.onnx_captioner import OnnxCaptioner
            from captioning.preparation.verify import verification_images

            OnnxCaptioner.load(staging, precision=precision).caption(
                verification_images(2)
            )  # the shipped int8 graphs run
        from captioning.function.onnx_captioner import OnnxCaptioner
        from captioning.preparation.optimise import optimise_graphs
        from captioning.preparation.verify import verification_images

        pictures = verification_images(check_images)
        optimise_graphs(  # the last step that touches the graphs: quantising would skip fused ops
            staging,
            sorted(set(graphs.values())),
            lambda directory: [
                OnnxCaptioner.load(directory, prompt=prompt).token_ids(pictures)
                for prompt in exporter.verify_prompts
            ],
        )
        (output / OPTIMISED_INDEX).unlink(missing_ok=True)  # an earlier build's
        for path in staging.iterdir():
            shutil.move(str(path), output / path.name)
