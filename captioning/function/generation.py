"""Generation settings from a model directory's generation_config.json, without transformers.

`num_beams` / `max_length` the caller passes win; None means what transformers' `generate` does when
called with no arguments: the model's generation config, and where that sets nothing, transformers' own
defaults (GENERATE_DEFAULT_NUM_BEAMS, greedy; GENERATE_DEFAULT_NEW_TOKENS after the decoder's start
token; captioning/contract/constants.py).
The numpy beam search (captioning/function/beam_search.py) reproduces transformers' for the settings in
`Generation`; `unsupported_settings` names everything else a generation_config.json may switch on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from captioning.contract.constants import GENERATE_DEFAULT_NEW_TOKENS, GENERATE_DEFAULT_NUM_BEAMS

GENERATION_CONFIG = "generation_config.json"

# Settings transformers' generate honours that the numpy beam search does not reproduce, each with the
# value at which it does nothing (None, transformers 5's default, does nothing too). Sampling parameters
# (temperature, top_k, ...) act only with do_sample.
_INACTIVE: dict[str, object] = {
    "do_sample": False,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "force_words_ids": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "forced_decoder_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
    "exponential_decay_length_penalty": None,
    "min_new_tokens": None,
    "max_new_tokens": None,
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
}
EARLY_STOPPING_VALUES = (True, False, "never")


class UnsupportedGeneration(ValueError):
    """A generation setting the numpy beam search cannot reproduce, or an invalid num_beams/max_length."""


@dataclass(frozen=True)
class Generation:
    """What the numpy beam search needs; the same meaning as transformers' GenerationConfig fields."""

    num_beams: int
    max_length: int
    decoder_start_token_id: int
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    min_length: int = 0
    length_penalty: float = 1.0
    early_stopping: bool | str = False


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
        if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens < 1:
            raise UnsupportedGeneration(
                f"max_new_tokens in the generation config must be a positive integer; got {new_tokens!r}"
            )
        length = input_length + new_tokens
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


def _eos_ids(value: object) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    return tuple(int(token) for token in value)


def generation_from_config(
    config: dict,
    *,
    num_beams: int | None,
    max_length: int | None,
    decoder_start_token_id: int | None = None,
) -> Generation:
    """The beam search settings for `config` (a generation_config.json dict); raises UnsupportedGeneration
    naming every setting it cannot reproduce."""
    unsupported = unsupported_settings(config)
    if unsupported:
        raise UnsupportedGeneration(
            "generation settings the numpy beam search does not reproduce: " + ", ".join(unsupported)
        )
    beams, length = resolve_beams_and_length(config, num_beams, max_length)
    start = config.get("decoder_start_token_id", decoder_start_token_id)
    if start is None:
        start = decoder_start_token_id if decoder_start_token_id is not None else config.get("bos_token_id")
    if start is None:
        raise UnsupportedGeneration("no decoder_start_token_id (nor bos_token_id) in the generation config")
    eos = _eos_ids(config.get("eos_token_id"))
    pad = config.get("pad_token_id")
    if pad is None and eos:
        pad = eos[0]  # as transformers' generate does, with a warning
    min_length = config.get("min_length") or 0
    length_penalty = config.get("length_penalty")
    early_stopping = config.get("early_stopping")
    return Generation(
        num_beams=beams,
        max_length=length,
        decoder_start_token_id=int(start),
        eos_token_ids=eos,
        pad_token_id=pad,
        min_length=int(min_length),
        length_penalty=1.0 if length_penalty is None else float(length_penalty),
        early_stopping=False if early_stopping is None else early_stopping,
    )
