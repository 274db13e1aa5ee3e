"""Captions with any model whose config `AutoModelForImageTextToText` maps, through `AutoProcessor`.

The torch runtime's path for every family but ViT + GPT-2 (which `captioning.function.captioner.Captioner`
runs on its own fast path): vision-encoder-decoder with other decoders (BERT, RoBERTa, ...), BLIP, GIT,
Florence-2, and chat-style vision-language models (Idefics3 / SmolVLM and others with a chat template).

What each family needs to give one plain caption per image (checked against transformers 5.23's code):
- vision-encoder-decoder: pixel values only; no prompt. The output is the decoder sequence.
- blip: no prompt by default (unconditional captioning). With one, the processor's `[CLS] prompt [SEP]`
  goes in, BLIP's `generate` swaps `[CLS]` for its decoder start and drops `[SEP]`, and the output
  repeats the prompt: the first `len(input_ids) - 1` tokens are cut before decoding.
- git: starts from `[CLS]` (its bos) when there is no prompt; a prompt is tokenized without special
  tokens after `[CLS]` (as GIT's own VQA example does). The output repeats the input: it is cut.
- florence2: the task token `<CAPTION>` by default (`<DETAILED_CAPTION>`, `<MORE_DETAILED_CAPTION>`
  also work); the processor turns it into the task's text. Encoder-decoder: the output is the answer.
- chat-style (a chat template in the processor, e.g. idefics3 / smolvlm): the instruction goes in one
  user turn with the image, the template adds the assistant's turn; only the new tokens are decoded.
  Images split into different numbers of tiles give prompts of different lengths: padded on the left.
All images of a call go through one `generate` (the prompt is the same for every image).

Generation settings: what the model's own `generate` does when called with no arguments; `num_beams`
and `max_length` given to `load` are the only settings passed to it, and win. That is the model's
generation config (generation_config.json, or what transformers derives from config.json), except for
BLIP, whose `generate` hands over to its text decoder's own generation config (generation_config.json
plays no part), and transformers' defaults where that sets nothing: greedy (1 beam), 20 new tokens.
The given `max_length` is transformers' own: it counts the decoder's start/prompt tokens, except for
chat-style models, where it counts only the new tokens (their prompt holds hundreds of image tokens).
GIT and chat models run their vision tower once per beam (generate repeats the whole input per beam).
Never touches the network.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from captioning.contract.constants import (
    GENERATE_DEFAULT_NEW_TOKENS,
    GENERATE_DEFAULT_NUM_BEAMS,
)
from captioning.contract.environment import offline_environment
from captioning.contract.runtimes import precision_problem

os.environ.update(offline_environment())  # before transformers / huggingface_hub read it

import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES  # noqa: E402

from captioning.function.cpus import available_cpus  # noqa: E402
from captioning.function.torch_captioner import apply_precision  # noqa: E402

logger = logging.getLogger(__name__)

CHAT_STYLE = "chat"
"""The family name used for every model whose processor has a chat template (idefics3, smolvlm, ...)."""

DEFAULT_PROMPTS: dict[str, str | None] = {
    "vision-encoder-decoder": None,
    "blip": None,
    "git": None,
    "florence2": "<CAPTION>",
    CHAT_STYLE: "Write a one-sentence caption for this image.",
}
"""The prompt each family starts from when the user sets none: a plain caption, nothing echoed."""

_PROMPTLESS_FAMILIES = ("vision-encoder-decoder",)
_CHAT_MODEL_TYPES = ("idefics2", "idefics3", "smolvlm")
"""Chat-style even when a directory lacks its chat template (the image token then leads the prompt)."""


class UnsupportedModelError(ValueError):
    """The directory's model cannot be captioned by this runtime; the message says why and what to do."""


@dataclass(frozen=True)
class GenerationSettings:
    """What `generate` runs with: the caller's settings, the rest as the model's own `generate` has it."""

    num_beams: int
    length: dict[str, int]
    """{"max_length": n} (counts the start/prompt tokens) or {"max_new_tokens": n}."""
    overrides: dict[str, int]
    """Only what the caller set: all that is passed to `generate`, which takes the rest from the model."""


@dataclass(frozen=True)
class _Inputs:
    tensors: dict[str, torch.Tensor]
    echoed: int
    """Leading tokens of each output row that repeat the input (cut before decoding)."""


class GenericCaptioner:
    """A loaded image-text-to-text model; `caption` runs all images of a call through one `generate`."""

    runtime = "torch"

    def __init__(
        self,
        model: nn.Module,
        processor: object,
        *,
        family: str,
        model_id: str,
        precision: str,
        generation: GenerationSettings,
        prompt: str | None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.family = family
        self.model_id = model_id
        self.precision = precision
        self.generation = generation
        self.num_beams = generation.num_beams
        self.length_settings = generation.length
        """`max_length` or `max_new_tokens`: the length limit generate runs with."""
        self.prompt = prompt
        self.tokenizer = getattr(processor, "tokenizer", None) or processor
        if family == CHAT_STYLE:
            self.tokenizer.padding_side = "left"  # generation continues at the right end of every row
        self._chat_text = _chat_text(processor, prompt) if family == CHAT_STYLE else None

    @property
    def max_length(self) -> int:
        """The caption length limit in effect (see the module docstring for what it counts)."""
        return next(iter(self.length_settings.values()))

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        num_beams: int | None = None,
        max_length: int | None = None,
        prompt: str | None = None,
        num_threads: int | None = None,
        model_id: str | None = None,
        precision: str = "fp32",
    ) -> GenericCaptioner:
        """Load a model directory (config, safetensors weights, processor files) for captioning.

        prompt: None takes the family's default (`DEFAULT_PROMPTS`); "" means no prompt at all.
        precision: "fp32"; "bf16" where the CPU computes bfloat16 natively (else fp32, one log line);
        "int8": dynamic int8 quantisation of the linear layers at load.
        """
        problem = precision_problem("torch", precision)
        if problem is not None:
            raise ValueError(problem)
        for name, value in (("num_beams", num_beams), ("max_length", max_length)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1 or None; got {value!r}")
        model_path = Path(model_dir)
        config = _checked_config(model_path)
        family = family_of(model_path, config)
        prompt = _resolved_prompt(family, prompt, config.model_type)

        torch.set_num_threads(num_threads or available_cpus())
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
        processor = _load_processor(model_path, family)
        model = AutoModelForImageTextToText.from_pretrained(
            model_path, local_files_only=True, dtype=torch.float32
        )
        model.eval()
        effective_precision = apply_precision(model, precision)
        generation = generation_settings(model, family, num_beams=num_beams, max_length=max_length)
        return cls(
            model,
            processor,
            family=family,
            model_id=model_id or model_path.resolve().name,
            precision=effective_precision,
            generation=generation,
            prompt=prompt,
        )

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, in order; all images go through a single batched `generate`."""
        if not images:
            return []
        images = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        inputs = self.inputs(images)
        with torch.inference_mode(), warnings.catch_warnings():
            # generate's advice to set max_new_tokens when the model sets no length: the user's to act
            # on (maxLength), not worth a line in the function's logs.
            warnings.filterwarnings("ignore", message="Using the model-agnostic default `max_length`")
            token_ids = self.model.generate(**inputs.tensors, **self.generation.overrides)
        texts = self.tokenizer.batch_decode(token_ids[:, inputs.echoed :], skip_special_tokens=True)
        return [text.strip() for text in texts]

    def inputs(self, images: Sequence[Image.Image]) -> _Inputs:
        """The tensors `generate` takes for `images` with this captioner's prompt, and how many leading
        output tokens repeat them."""
        count = len(images)
        family, processor, prompt = self.family, self.processor, self.prompt
        if family == "vision-encoder-decoder":
            pixels = processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
            tensors = {"pixel_values": pixels}
            echoed = 0
        elif family == CHAT_STYLE:
            tensors = dict(
                processor(
                    text=[self._chat_text] * count,
                    images=[[image] for image in images],
                    padding=True,
                    return_tensors="pt",
                )
            )
            echoed = tensors["input_ids"].shape[1]
        elif family == "git":
            tensors = {"pixel_values": processor(images=list(images), return_tensors="pt")["pixel_values"]}
            echoed = 1  # without a prompt generate starts from the model's bos ([CLS]) and returns it
            if prompt:
                start = self.tokenizer.cls_token_id
                if start is None:
                    start = self.model.generation_config.bos_token_id
                prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
                tensors["input_ids"] = torch.tensor([[start, *prompt_ids]] * count, dtype=torch.long)
                echoed = tensors["input_ids"].shape[1]
        elif family == "blip":
            if prompt:
                tensors = dict(processor(images=list(images), text=[prompt] * count, return_tensors="pt"))
                echoed = tensors["input_ids"].shape[1] - 1  # generate drops the trailing [SEP]
            else:
                tensors = {
                    "pixel_values": processor(images=list(images), return_tensors="pt")["pixel_values"]
                }
                echoed = 1  # the decoder start token
        elif self.model.config.is_encoder_decoder:  # florence2 and other encoder-decoders
            text = [prompt] * count if prompt else None
            tensors = dict(processor(images=list(images), text=text, return_tensors="pt"))
            echoed = 0
        else:  # a decoder-only model without a chat template: the prompt (if any) is echoed
            text = [prompt] * count if prompt else None
            tensors = dict(processor(images=list(images), text=text, return_tensors="pt"))
            echoed = tensors["input_ids"].shape[1] if "input_ids" in tensors else 0
        dtype = self.model.dtype
        tensors = {
            name: value.to(dtype) if torch.is_floating_point(value) else value
            for name, value in tensors.items()
            if name not in ("token_type_ids",)
        }
        return _Inputs(tensors, echoed)


def family_of(model_path: Path, config: transformers.PretrainedConfig) -> str:
    """The captioning family: the config's model_type, or CHAT_STYLE when the processor has a chat
    template (idefics3, smolvlm and other instruction-tuned vision-language models)."""
    model_type = config.model_type
    if model_type in DEFAULT_PROMPTS:
        return model_type
    if model_type in _CHAT_MODEL_TYPES or _has_chat_template(model_path):
        return CHAT_STYLE
    return model_type


def _has_chat_template(model_path: Path) -> bool:
    if (model_path / "chat_template.jinja").is_file() or (model_path / "chat_template.json").is_file():
        return True
    for name in ("processor_config.json", "tokenizer_config.json"):
        path = model_path / name
        if path.is_file() and "chat_template" in json.loads(path.read_text(encoding="utf-8")):
            return True
    return False


def _checked_config(model_path: Path) -> transformers.PretrainedConfig:
    """The model's config, refusing what this runtime cannot load without running the model's own code."""
    config_path = model_path / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"no captioning model at {model_path}: config.json is missing")
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    if raw.get("auto_map"):
        raise UnsupportedModelError(
            f"the model at {model_path} needs its own code (trust_remote_code: config.json has auto_map); "
            "no remote code runs in the function: choose a model transformers supports natively"
        )
    model_type = raw.get("model_type")
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise UnsupportedModelError(
            f"model_type {model_type!r} (at {model_path}) is not an image-text-to-text model transformers "
            f"{transformers.__version__} can load; supported families include vision-encoder-decoder, "
            "blip, git, florence2, idefics3 and smolvlm"
        )
    return AutoConfig.from_pretrained(model_path, local_files_only=True)


def _resolved_prompt(family: str, prompt: str | None, model_type: str) -> str | None:
    if prompt is None:
        return DEFAULT_PROMPTS.get(family)
    if prompt and family in _PROMPTLESS_FAMILIES:
        raise ValueError(
            f"prompt={prompt!r} is not allowed: {model_type} models caption from the image alone; unset it"
        )
    if family == CHAT_STYLE and not prompt.strip():
        raise ValueError("prompt='' is not allowed: a chat-style model needs an instruction; unset it")
    return prompt or None


def _load_processor(model_path: Path, family: str) -> object:
    if family == "vision-encoder-decoder":  # no processor class: image processor + tokenizer
        return _ImageAndText(
            AutoImageProcessor.from_pretrained(model_path, backend="pil", local_files_only=True),
            AutoTokenizer.from_pretrained(model_path, local_files_only=True),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torchvision is not available, using the PIL backend"
        return AutoProcessor.from_pretrained(model_path, local_files_only=True)


@dataclass
class _ImageAndText:
    image_processor: object
    tokenizer: object


def _chat_text(processor: object, prompt: str) -> str:
    """The user turn with the image and `prompt`, and the start of the assistant's turn."""
    if not getattr(processor, "chat_template", None):
        return f"{processor.image_token}{prompt}"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def generation_settings(
    model: nn.Module, family: str, *, num_beams: int | None, max_length: int | None
) -> GenerationSettings:
    """The settings the model's own `generate` runs with, given only the caller's `num_beams` and
    `max_length` (None: unset)."""
    # BlipForConditionalGeneration.generate calls its text decoder's generate, which reads the text
    # decoder's generation config (built from config.json's text_config), not the model's.
    generating = model.text_decoder if family == "blip" else model
    config = generating.generation_config
    length_key = "max_new_tokens" if family == CHAT_STYLE else "max_length"
    overrides: dict[str, int] = {}
    if num_beams is not None:
        overrides["num_beams"] = num_beams
    if max_length is not None:
        overrides[length_key] = max_length
    beams = num_beams if num_beams is not None else config.num_beams
    if max_length is not None:
        length = {length_key: max_length}
    elif config.max_new_tokens is not None:
        length = {"max_new_tokens": config.max_new_tokens}
    elif config.max_length is not None:
        length = {"max_length": config.max_length}
    else:
        length = {"max_new_tokens": GENERATE_DEFAULT_NEW_TOKENS}
    return GenerationSettings(
        num_beams=GENERATE_DEFAULT_NUM_BEAMS if beams is None else beams, length=length, overrides=overrides
    )
