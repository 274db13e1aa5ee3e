"""Generation settings from a model directory's generation_config.json, without transformers.

`num_beams` / `max_length` the caller passes win; None means what transformers' `generate` does when
called with no arguments: the model's generation config, and where that sets nothing, transformers' own
defaults (GENERATE_DEFAULT_NUM_BEAMS, greedy; GENERATE_DEFAULT_NEW_TOKENS after the prompt;
captioning/contract/constants.py).
The numpy search (captioning/function/beam_search.py) reproduces transformers' for the settings in
`Generation`; `unsupported_settings` names everything else a generation_config.json may switch on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from captioning.contract.constants import GENERATE_DEFAULT_NEW_TOKENS, GENERATE_DEFAULT_NUM_BEAMS

GENERATION_CONFIG = "generation_config.json"

# Settings transformers' generate honours that the numpy search does not reproduce, each with the value at
# which it does nothing (None, transformers 5's default, does nothing too). Sampling parameters
# (temperature, top_k, ...) act only with do_sample; the encoder_* ones only on a text encoder's input_ids.
_INACTIVE: dict[str, object] = {
    "do_sample": False,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "encoder_repetition_penalty": 1.0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "force_words_ids": None,
    "forced_decoder_ids": None,
    "sequence_bias": None,
    "exponential_decay_length_penalty": None,
    "num_return_sequences": 1,
    "constraints": None,
    "renormalize_logits": False,
    "remove_invalid_values": False,
    "guidance_scale": None,
    "max_time": None,
    "stop_strings": None,
    "watermarking_config": None,
    "penalty_alpha": None,
    "dola_layers": None,
    "low_memory": None,
    "token_healing": False,
    "use_mtp": False,
    "prompt_lookup_num_tokens": None,
    "assistant_early_exit": None,
}
EARLY_STOPPING_VALUES = (True, False, "never")


class UnsupportedGeneration(ValueError):
    """A generation setting the numpy search cannot reproduce, or an invalid value of one it can."""


@dataclass(frozen=True)
class Generation:
    """What the numpy search needs; the same meaning as transformers' GenerationConfig fields.

    Lengths count the prompt (every token in a row before generation), as transformers' do. With
    `max_new_tokens` set the limit is the prompt's length plus that (at most `max_length_cap`), and
    `max_length` is that limit for a one-token prompt; `max_length_for` gives it for any prompt.
    """

    num_beams: int
    max_length: int
    decoder_start_token_id: int
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    min_length: int = 0
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    max_new_tokens: int | None = None
    max_length_cap: int | None = None
    min_new_tokens: int | None = None
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    forced_bos_token_id: int | None = None
    forced_eos_token_ids: tuple[int, ...] = ()
    suppress_tokens: tuple[int, ...] = ()
    begin_suppress_tokens: tuple[int, ...] = ()

    def max_length_for(self, prompt_length: int) -> int:
        """The most tokens in a row that starts with `prompt_length` prompt tokens."""
        if self.max_new_tokens is None:
            return self.max_length
        length = prompt_length + self.max_new_tokens
        return length if self.max_length_cap is None else min(length, self.max_length_cap)

    def min_length_for(self, prompt_length: int) -> int:
        """Rows shorter than this (prompt included) may not end: their eos scores are -inf."""
        if self.min_new_tokens is not None:
            return prompt_length + self.min_new_tokens
        return self.min_length


def read_generation_config(model_dir: str | os.PathLike[str]) -> dict:
    """The directory's generation_config.json as a dict ({} when there is none)."""
    path = Path(model_dir) / GENERATION_CONFIG
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def resolve_beams_and_length(
    config: dict, num_beams: int | None, max_length: int | None, *, input_length: int = 1
) -> tuple[int, int]:
    """(num_beams, max_length) for a decoder that starts from `input_length` tokens: the caller's, else
    what `generate` makes of the generation config `config` (a generation_config.json dict, or a loaded
    GenerationConfig's to_dict()) when called with no arguments.

    max_length counts the start tokens, as transformers' does. Unset in the config, generate takes
    max_new_tokens + input_length, else max_length, else GENERATE_DEFAULT_NEW_TOKENS + input_length.
    (generate caps that last default at a `max_position_embeddings` on the model's top-level config;
    vision-encoder-decoder configs have none.)
    """
    beams = num_beams if num_beams is not None else config.get("num_beams")
    if beams is None:
        beams = GENERATE_DEFAULT_NUM_BEAMS
    length = max_length
    new_tokens = config.get("max_new_tokens")
    if length is None and new_tokens is not None:
        length = input_length + _count(new_tokens, "max_new_tokens", least=1)
    if length is None:
        length = config.get("max_length")
    if length is None:
        length = input_length + GENERATE_DEFAULT_NEW_TOKENS
    if isinstance(beams, bool) or not isinstance(beams, int) or beams < 1:
        raise UnsupportedGeneration(f"num_beams must be a positive integer; got {beams!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise UnsupportedGeneration(
            f"max_length must be an integer of at least 2 (the start token and one more); got {length!r}"
        )
    return beams, length


def unsupported_settings(config: dict) -> list[str]:
    """`name=value` for each setting in `config` that changes generation in a way not reproduced here."""
    found = [
        f"{name}={config[name]!r}"
        for name, inactive in _INACTIVE.items()
        if config.get(name) not in (None, inactive, [], {})
    ]
    if config.get("early_stopping") not in (None, *EARLY_STOPPING_VALUES):
        found.append(f"early_stopping={config['early_stopping']!r}")
    return found


def _count(value: object, name: str, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UnsupportedGeneration(
            f"{name} in the generation config must be an integer of at least {least}; got {value!r}"
        )
    return value


def _token_ids(value: object, name: str) -> tuple[int, ...]:
    """One id or a list of them, as transformers accepts for eos_token_id and the like."""
    if value is None:
        return ()
    values = value if isinstance(value, list | tuple) else [value]
    for token in values:
        _count(token, name)
    return tuple(values)


def _number(value: object, name: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnsupportedGeneration(f"{name} in the generation config must be a number; got {value!r}")
    return float(value)


def generation_from_config(
    config: dict,
    *,
    num_beams: int | None,
    max_length: int | None,
    decoder_start_token_id: int | None = None,
    max_position_embeddings: int | None = None,
) -> Generation:
    """The search settings for `config` (a generation_config.json dict); raises UnsupportedGeneration
    naming every setting it cannot reproduce.

    `max_position_embeddings`: the one on the model's top-level config, if any; generate caps its default
    length (GENERATE_DEFAULT_NEW_TOKENS after the prompt, when neither the caller nor the config sets one)
    there.
    """
    unsupported = unsupported_settings(config)
    if unsupported:
        raise UnsupportedGeneration(
            "generation settings the numpy search does not reproduce: " + ", ".join(unsupported)
        )
    beams, length = resolve_beams_and_length(config, num_beams, max_length)
    max_new_tokens = cap = None
    if max_length is None and config.get("max_new_tokens") is not None:
        max_new_tokens = config["max_new_tokens"]
    elif max_length is None and config.get("max_length") is None:
        max_new_tokens, cap = GENERATE_DEFAULT_NEW_TOKENS, max_position_embeddings
        if cap is not None:
            length = min(length, cap)
    start = config.get("decoder_start_token_id", decoder_start_token_id)
    if start is None:
        start = decoder_start_token_id if decoder_start_token_id is not None else config.get("bos_token_id")
    if start is None:
        raise UnsupportedGeneration("no decoder_start_token_id (nor bos_token_id) in the generation config")
    eos = _token_ids(config.get("eos_token_id"), "eos_token_id")
    pad = config.get("pad_token_id")
    if pad is None and eos:
        pad = eos[0]  # as transformers' generate does, with a warning
    min_new_tokens = config.get("min_new_tokens")
    repetition_penalty = _number(config.get("repetition_penalty"), "repetition_penalty", 1.0)
    if repetition_penalty <= 0.0:
        raise UnsupportedGeneration(f"repetition_penalty must be positive; got {repetition_penalty!r}")
    forced_bos = config.get("forced_bos_token_id")
    forced_eos = _token_ids(config.get("forced_eos_token_id"), "forced_eos_token_id")
    if len(forced_eos) > 1 and beams > 1:
        # Every forced id scores 0 on every beam: exact ties, whose order torch.topk leaves unspecified.
        raise UnsupportedGeneration(
            f"forced_eos_token_id={list(forced_eos)} with num_beams={beams}: several forced eos ids tie in"
            " beam search, in an order transformers leaves to torch.topk; force one id, or use num_beams=1"
        )
    return Generation(
        num_beams=beams,
        max_length=length,
        decoder_start_token_id=int(start),
        eos_token_ids=eos,
        pad_token_id=pad,
        min_length=_count(config.get("min_length") or 0, "min_length"),
        length_penalty=_number(config.get("length_penalty"), "length_penalty", 1.0),
        early_stopping=False if config.get("early_stopping") is None else config["early_stopping"],
        max_new_tokens=max_new_tokens,
        max_length_cap=cap,
        min_new_tokens=None if min_new_tokens is None else _count(min_new_tokens, "min_new_tokens"),
        repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=_count(config.get("no_repeat_ngram_size") or 0, "no_repeat_ngram_size"),
        forced_bos_token_id=None if forced_bos is None else _count(forced_bos, "forced_bos_token_id"),
        forced_eos_token_ids=forced_eos,
        suppress_tokens=_token_ids(config.get("suppress_tokens"), "suppress_tokens"),
        begin_suppress_tokens=_token_ids(config.get("begin_suppress_tokens"), "begin_suppress_tokens"),
    )
