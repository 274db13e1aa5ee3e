"""The families benchmark's models: each family's real architecture with random weights, saved as
`save_pretrained` writes the published checkpoint (config, generation config, safetensors, tokenizer,
processor), then exported for ONNX Runtime in fp32 and int8 with the project's own build step.

No Hub here: configs come from tests/real_architectures.py (the published config.json sizes), tokenizers
are made here with the published vocabulary sizes (dummy tokens, the real special tokens at their real
ids), processors with the published image settings. ``tiny`` builds tests/tiny_families.py's models
instead, to check the benchmark itself quickly (their figures mean nothing).

Generation: every caption is forced to its full length (``min_length = max_length``), so the torch and
ONNX pipelines of a family do the same work whatever random weights make of the end token; greedy, as
the published BLIP, GIT and Florence-2 generation configs leave generate with no arguments
(Florence-2's beams and no_repeat_ngram_size are left out: the figures compare runtimes, not settings).
"""

from __future__ import annotations

import json
import shutil
import subprocess  # noqa: S404  fixed argument lists, no shell
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.onnx_models import MARKER, ONNX_PRECISIONS, REPO_ROOT, export_command, exporter_digest

FAMILY_MODEL_IDS = {
    "vit-gpt2": "nlpconnect/vit-gpt2-image-captioning",
    "blip": "Salesforce/blip-image-captioning-base",
    "git": "microsoft/git-base",
    "florence2": "florence-community/Florence-2-base",
    "idefics3": "HuggingFaceTB/SmolVLM-256M-Instruct",
}
"""Family -> the published model whose architecture the benchmark builds."""
FAMILIES = tuple(FAMILY_MODEL_IDS)
CAPTION_LENGTH = 20
SOURCE_MARKER = ".family-source-ready"
MODEL_SEED = 0


@dataclass(frozen=True)
class FamilyModels:
    family: str
    model_id: str
    source: Path
    """The torch (transformers) model directory: what the torch runtime loads and the export reads."""
    onnx: dict[str, Path] = field(default_factory=dict)
    """Exported directory per ONNX precision (only those that exported)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Why a precision is missing: the exporter's last line."""
    export_seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds of each export done in this run (absent when it came from the cache)."""
    exporter_changed_since: dict[str, bool] = field(default_factory=dict)
    """Per precision: the exporter's code differs from the one that wrote the export (kept exports)."""


def _generation(model, **token_ids: int) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        **token_ids, num_beams=1, max_length=CAPTION_LENGTH, min_length=CAPTION_LENGTH
    )


def _bert_tokenizer(vocab_size: int, extra: dict[int, str] | None = None):
    """A WordPiece tokenizer of BERT's id layout ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103)
    with dummy words up to ``vocab_size``."""
    import transformers

    vocab = [f"tok{index}" for index in range(vocab_size)]
    for index, token in {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}.items():
        vocab[index] = token
    for index, token in (extra or {}).items():
        vocab[index] = token
    for index, word in enumerate("a picture of the cat dog on sitting red blue photo".split()):
        vocab[1000 + index] = word
    return transformers.BertTokenizer(vocab={token: index for index, token in enumerate(vocab)})


def _architecture(family: str):
    from tests.real_architectures import ARCHITECTURES

    return ARCHITECTURES[FAMILY_MODEL_IDS[family]]


def _save(directory: Path, model, *parts) -> None:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    for part in parts:
        part.save_pretrained(directory)


def build_blip(directory: Path) -> None:
    import transformers

    tokenizer = _bert_tokenizer(30524, {30522: "[DEC]"})
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    model = transformers.BlipForConditionalGeneration(_architecture("blip").config()).eval()
    _generation(model, bos_token_id=30522, eos_token_id=102, pad_token_id=0)
    processor = transformers.BlipProcessor(transformers.BlipImageProcessorPil(), tokenizer)
    _save(directory, model, processor)


def build_git(directory: Path) -> None:
    import transformers

    model = transformers.GitForCausalLM(_architecture("git").config()).eval()
    _generation(model, bos_token_id=101, eos_token_id=102, pad_token_id=0)
    image_processor = transformers.CLIPImageProcessorPil(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}
    )
    _save(directory, model, transformers.GitProcessor(image_processor, _bert_tokenizer(30522)))


def _florence2_tokenizer(vocab_size: int, image_token_id: int):
    """BART's special tokens at 0-3 and <mask>, a small byte-level BPE, dummy tokens up to
    ``image_token_id`` and <image> there, as in the native Florence-2 port's vocabulary."""
    import transformers
    from tokenizers import processors

    from models.tiny import train_byte_level_bpe

    special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    words = "a picture of the what does image describe ? caption this in one sentence detail"
    backend = train_byte_level_bpe(words, special, vocab_size=400)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    backend.add_tokens([f"<t{index}>" for index in range(backend.get_vocab_size(), image_token_id)])
    roles = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    tokenizer = transformers.BartTokenizer(
        tokenizer_object=backend,
        extra_special_tokens={"image_token": "<image>"},
        mask_token="<mask>",  # noqa: S106  a token, not a password
        **roles,
    )
    if tokenizer.convert_tokens_to_ids("<image>") != image_token_id or len(tokenizer) != vocab_size:
        raise RuntimeError("the Florence-2 tokenizer's <image> id or size differs from the config's")
    return tokenizer


def build_florence2(directory: Path) -> None:
    import transformers

    from tests.real_architectures import FLORENCE2_IMAGE_TOKENS

    config = _architecture("florence2").config()
    tokenizer = _florence2_tokenizer(config.text_config.vocab_size, config.image_token_id)
    model = transformers.Florence2ForConditionalGeneration(config).eval()
    _generation(model, bos_token_id=0, eos_token_id=2, pad_token_id=1, decoder_start_token_id=2)
    image_processor = transformers.CLIPImageProcessorPil(
        size={"height": 768, "width": 768},
        crop_size={"height": 768, "width": 768},
        do_center_crop=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    image_processor.image_seq_length = FLORENCE2_IMAGE_TOKENS
    _save(directory, model, transformers.Florence2Processor(image_processor, tokenizer))


def build_vit_gpt2(directory: Path) -> None:
    """The main benchmark's model (bench/model.py: 4 beams, 16 tokens forced), so the families figures
    of the default model sit beside the original-design comparison."""
    from bench.model import build_model, build_tokenizer, save_model_forms

    forms = save_model_forms(build_model(), build_tokenizer(), directory.parent / "vit-gpt2-forms")
    shutil.copytree(forms.fp32_dir, directory, dirs_exist_ok=True)


FULL_SIZE_BUILDERS: dict[str, Callable[[Path], None]] = {
    "vit-gpt2": build_vit_gpt2,
    "blip": build_blip,
    "git": build_git,
    "florence2": build_florence2,
}
"""Families the benchmark can build at full size (idefics3: not yet, see docs/performance.md)."""


def build_tiny(family: str, directory: Path) -> None:
    from models.tiny import build_vit_gpt2 as tiny_vit_gpt2
    from tests.tiny_families import BUILDERS

    forced = {"min_length": 8, "max_length": 8, "num_beams": 1}
    if family == "vit-gpt2":
        tiny_vit_gpt2(directory, max_length=8, num_beams=1)
    else:
        BUILDERS[family](directory, generation=forced)


def ensure_source(family: str, directory: Path, *, tiny: bool, log=print) -> Path:
    """Build the family's torch model directory once (cached beside its exports)."""
    import torch

    marker = directory / SOURCE_MARKER
    if marker.exists():
        return directory
    if directory.exists():
        shutil.rmtree(directory)
    if not tiny and family not in FULL_SIZE_BUILDERS:
        raise ValueError(
            f"family {family!r} has no full-size builder yet; built: {sorted(FULL_SIZE_BUILDERS)}"
        )
    size = "tiny " if tiny else ""
    log(f"building {size}{family} ({FAMILY_MODEL_IDS[family]}'s architecture), random weights")
    torch.manual_seed(MODEL_SEED)
    (build_tiny(family, directory) if tiny else FULL_SIZE_BUILDERS[family](directory))
    marker.write_text(json.dumps({"family": family, "tiny": tiny}))
    return directory


def ensure_family_models(
    family: str,
    root: Path,
    *,
    tiny: bool = False,
    keep_exports: bool = False,
    cached_only: bool = False,
    log=print,
) -> FamilyModels:
    """The family's source directory and its fp32/int8 exports, redone when the exporter's code changed
    (``keep_exports``: reused anyway, and said so); a failed export is a note naming the exporter's last
    line, not a crash. ``cached_only``: nothing built or exported, only what the cache holds is used."""
    import time

    if cached_only and not (root / "torch-fp32" / SOURCE_MARKER).exists():
        raise FileNotFoundError(f"{family}: no built model in {root} (--cached-only)")

    source = ensure_source(family, root / "torch-fp32", tiny=tiny, log=log)
    models = FamilyModels(family, FAMILY_MODEL_IDS[family], source)
    digest = exporter_digest()
    for precision in ONNX_PRECISIONS:
        output = root / f"onnx-{precision}"
        marker = output / MARKER
        if marker.exists() and (keep_exports or marker.read_text() == digest):
            models.onnx[precision] = output
            models.exporter_changed_since[precision] = marker.read_text() != digest
            continue
        if cached_only:
            models.notes[precision] = f"not in the cache at {output} (--cached-only run)"
            continue
        if output.exists():
            shutil.rmtree(output)
        log(f"exporting {family} for ONNX Runtime, {precision} (python -m captioning.preparation)")
        started = time.perf_counter()
        command = export_command(source, output, precision)
        completed = subprocess.run(  # noqa: S603  fixed argument list, our own interpreter
            command, cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            lines = (completed.stderr.strip() or completed.stdout.strip()).splitlines()
            models.notes[precision] = (
                f"python -m captioning.preparation --runtime onnx --precision {precision} failed "
                f"(exit {completed.returncode}): {lines[-1] if lines else 'no output'}"
            )
            continue
        models.export_seconds[precision] = round(time.perf_counter() - started, 1)
        models.exporter_changed_since[precision] = False
        marker.write_text(digest)
        models.onnx[precision] = output
    return models
