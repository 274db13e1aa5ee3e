"""The numpy search (captioning/function/beam_search.py) gives the token ids transformers' `generate` gives.

Tiny random torch models built from configs: a GPT-2 language model (decoder-only, prompts of different
lengths left-padded in one batch, as GIT, BLIP's text decoder and SmolVLM generate) and a BART
(encoder-decoder, the decoder starting from its start token or a longer decoder prompt, as Florence-2).
The numpy side's `step` runs the same torch model incrementally with its cache, reordered by `parents`,
as an ONNX adapter does; the settings come from the model's generation config through
`generation_from_config`. Output heads are scaled up so the random logits are far apart (no ties that
would make the comparisons vacuous), and every setting is checked to change transformers' output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import transformers
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
)

from captioning.function.beam_search import generate
from captioning.function.generation import generation_from_config

VOCAB = 48
PAD = 1
EOS = [1, 2, 3]  # decoder-only: pad is the first eos, as for GPT-2-style tokenizers
PROMPT = np.array([[PAD, PAD, 5, 6, 7], [8, 9, 10, 11, 12], [PAD, PAD, PAD, PAD, 13]], dtype=np.int64)
PROMPT_MASK = (np.arange(5)[None, :] >= np.array([2, 0, 4])[:, None]).astype(np.int64)
DECODER_ONLY = {"bos_token_id": 0, "eos_token_id": EOS, "pad_token_id": PAD, "max_new_tokens": 16}
# BART's own special ids: bos 0, pad 1, eos 2 = decoder start.
ENCODER_DECODER = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2}
ENCODER_DECODER |= {"max_length": 14}
SOURCE = np.array([[5, 9, 14, 22, 7, 2], [30, 11, 4, 2, 1, 1], [17, 17, 40, 8, 25, 2]], dtype=np.int64)
# Florence-2-base's generation_config.json switches these on (with its own max_length).
FLORENCE = {"num_beams": 3, "no_repeat_ngram_size": 3, "early_stopping": True}
FLORENCE |= {"forced_bos_token_id": 0, "forced_eos_token_id": 2}


# Their output may equal the baseline's for this model: they are checked for equality with generate only.
_MAY_COINCIDE = {"beams-3-early-stopping-true", "beams-3-early-stopping-never"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models: threads only contend on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _widen(head: torch.nn.Linear, scale: float) -> None:
    with torch.no_grad():
        head.weight.mul_(scale)


@pytest.fixture(scope="module")
def decoder_only() -> GPT2LMHeadModel:
    transformers.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64, tie_word_embeddings=False
    )
    model = GPT2LMHeadModel(config).eval()
    _widen(model.lm_head, 12.0)
    return model


@pytest.fixture(scope="module")
def encoder_decoder() -> BartForConditionalGeneration:
    transformers.utils.logging.set_verbosity_error()
    torch.manual_seed(1)
    config = BartConfig(
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        forced_eos_token_id=None,
        init_std=0.2,
    )
    model = BartForConditionalGeneration(config).eval()
    _widen(model.lm_head, 3.0)
    with torch.no_grad():  # eos close to two frequent tokens, so rows end at varied lengths
        model.lm_head.weight[2] = 0.5 * (model.lm_head.weight[36] + model.lm_head.weight[40])
        model.final_logits_bias[0, 2] = 1.0
    return model


class TorchStep:
    """The numpy search's `step` over a torch model: a prefill on the first call, then one token per row
    with the model's own cache, reordered by `parents`."""

    def __init__(self, model, prompt: np.ndarray, prompt_mask: np.ndarray | None, source: np.ndarray | None):
        self.model, self.prompt, self.prompt_mask, self.source = model, prompt, prompt_mask, source
        self.cache = None
        self.mask: torch.Tensor | None = None
        self.encoder: dict = {}

    def __call__(self, tokens: np.ndarray, parents: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self.cache is None:
            per_row = len(tokens) // len(self.prompt)
            input_ids = torch.from_numpy(np.repeat(self.prompt, per_row, axis=0))
            np.testing.assert_array_equal(tokens, input_ids[:, -1].numpy())  # the prompt's last column
            mask = self.prompt_mask if self.prompt_mask is not None else np.ones_like(self.prompt)
            self.mask = torch.from_numpy(np.repeat(mask, per_row, axis=0))
            positions = (self.mask.cumsum(-1) - 1).masked_fill(self.mask == 0, 0)
            if self.source is not None:
                source = torch.from_numpy(np.repeat(self.source, per_row, axis=0))
                source_mask = (source != PAD).long()
                with torch.no_grad():
                    outputs = self.model.get_encoder()(input_ids=source, attention_mask=source_mask)
                self.encoder = {"encoder_outputs": outputs, "attention_mask": source_mask}
        else:
            if parents is not None:
                self.cache.reorder_cache(torch.from_numpy(parents))
                self.mask = self.mask[torch.from_numpy(parents)]
            self.mask = torch.cat([self.mask, torch.ones((len(tokens), 1), dtype=self.mask.dtype)], dim=1)
            positions = (self.mask.cumsum(-1) - 1)[:, -1:]
            input_ids = torch.from_numpy(tokens)[:, None]
        with torch.no_grad():
            if self.source is not None:
                outputs = self.model(
                    decoder_input_ids=input_ids, past_key_values=self.cache, use_cache=True, **self.encoder
                )
            else:
                mask = (
                    None if bool((self.mask == 1).all()) else self.mask
                )  # as generate drops an all-ones mask
                outputs = self.model(
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=positions,
                    past_key_values=self.cache,
                    use_cache=True,
                )
        self.cache = outputs.past_key_values
        logits = outputs.logits[:, -1].float()
        return logits.numpy(), torch.log_softmax(logits, dim=-1).numpy()


_GENERATED: dict[tuple, np.ndarray] = {}


def _transformers(
    model, generation: dict, prompt: np.ndarray | None, source: np.ndarray | None
) -> np.ndarray:
    """What model.generate() gives with `generation` as the model's generation config (memoised)."""
    key = (id(model), json.dumps(generation, sort_keys=True), None if prompt is None else prompt.tobytes())
    if key not in _GENERATED:
        _GENERATED[key] = _run_generate(model, generation, prompt, source)
    return _GENERATED[key]


def _run_generate(
    model, generation: dict, prompt: np.ndarray | None, source: np.ndarray | None
) -> np.ndarray:
    model.generation_config = GenerationConfig(**generation)
    with torch.no_grad():
        if source is None:
            output = model.generate(
                input_ids=torch.from_numpy(prompt), attention_mask=torch.from_numpy(PROMPT_MASK)
            )
        else:
            decoder = {} if prompt is None else {"decoder_input_ids": torch.from_numpy(prompt)}
            source_ids = torch.from_numpy(source)
            output = model.generate(
                input_ids=source_ids, attention_mask=(source_ids != PAD).long(), **decoder
            )
    return output.numpy()


def _numpy(model, generation: dict, prompt: np.ndarray | None, source: np.ndarray | None) -> list[list[int]]:
    settings = generation_from_config(
        GenerationConfig(**generation).to_dict(),
        num_beams=None,
        max_length=None,
        max_position_embeddings=model.config.max_position_embeddings,
    )
    prompt_mask = PROMPT_MASK if source is None else None
    step = TorchStep(
        model, prompt if prompt is not None else np.full((3, 1), 2, dtype=np.int64), prompt_mask, source
    )
    return generate(
        step, len(SOURCE if source is not None else prompt), settings, prompt=prompt, prompt_mask=prompt_mask
    )


def _assert_same(expected: np.ndarray, ours: list[list[int]], generation: dict) -> None:
    """Our rows are transformers' up to and including eos, where transformers pads after it."""
    eos = generation["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]
    pad = generation["pad_token_id"]
    fill = pad if generation.get("num_beams", 1) == 1 else (pad or eos[0])
    assert expected.shape[1] == max(len(row) for row in ours), (expected, ours)
    for expected_row, row in zip(expected.tolist(), ours, strict=True):
        assert row == expected_row[: len(row)], (expected, ours)
        assert expected_row[len(row) :] == [fill] * (len(expected_row) - len(row)), (expected, ours)
        assert len(row) == len(expected_row) or row[-1] in eos, (expected, ours)


_PROCESSORS = {
    "repetition": {"repetition_penalty": 1.8},
    "repetition-below-1": {"repetition_penalty": 0.6},
    "ngram-2": {"no_repeat_ngram_size": 2},
    "ngram-1": {"no_repeat_ngram_size": 1},
    "min-new-tokens": {"min_new_tokens": 8},
    "min-length": {"min_length": 13},
    "forced-eos": {"forced_eos_token_id": [4]},
    "suppress": {"suppress_tokens": [33, 47]},
    "begin-suppress": {"begin_suppress_tokens": [7, 9, 33]},
    "max-length": {"max_new_tokens": None, "max_length": 9},
    "one-eos": {"eos_token_id": 1},
}
_BEAMS = {
    "length-penalty-negative": {"length_penalty": -1.0},
    "length-penalty-zero": {"length_penalty": 0.0},
    "length-penalty-two": {"length_penalty": 2.0},
    "early-stopping-true": {"early_stopping": True},
    "early-stopping-never": {"early_stopping": "never"},
    "true-length-penalty-two": {"early_stopping": True, "length_penalty": 2.0},
    "never-length-penalty-two": {"early_stopping": "never", "length_penalty": 2.0},
    "never-length-penalty-negative": {"early_stopping": "never", "length_penalty": -1.0},
    "true-length-penalty-negative": {"early_stopping": True, "length_penalty": -1.0},
}
_DECODER_ONLY_CASES = [("greedy-" + name, {**change}) for name, change in _PROCESSORS.items()]
_DECODER_ONLY_CASES.append(("greedy-forced-eos-several", {"forced_eos_token_id": [5, 4]}))
_DECODER_ONLY_CASES += [
    (f"beams-{beams}-{name}", {"num_beams": beams, **change})
    for beams in (2, 3, 4)
    for name, change in (_PROCESSORS | _BEAMS).items()
    if beams == 3 or name in ("repetition", "ngram-2", "min-new-tokens", "never-length-penalty-two")
]


def test_decoder_only_baselines_equal_generate_and_are_not_degenerate(decoder_only) -> None:
    ends = []
    for beams in (1, 2, 3, 4):
        generation = DECODER_ONLY | {"num_beams": beams}
        expected = _transformers(decoder_only, generation, PROMPT, None)
        _assert_same(expected, _numpy(decoder_only, generation, PROMPT, None), generation)
        generated = expected[:, PROMPT.shape[1] :]
        assert len(np.unique(generated)) >= 6, generated  # not one token repeated
        ends += [bool(np.isin(row, EOS).any()) for row in generated]
    assert 2 <= sum(ends) <= len(ends) - 2, ends  # some rows end at eos, some reach max_length


@pytest.mark.parametrize(
    ("name", "change"), _DECODER_ONLY_CASES, ids=[name for name, _ in _DECODER_ONLY_CASES]
)
def test_decoder_only_with_a_left_padded_prompt_equals_generate(
    decoder_only, name: str, change: dict
) -> None:
    generation = {key: value for key, value in (DECODER_ONLY | change).items() if value is not None}
    expected = _transformers(decoder_only, generation, PROMPT, None)
    _assert_same(expected, _numpy(decoder_only, generation, PROMPT, None), generation)
    baseline = DECODER_ONLY | {"num_beams": change.get("num_beams", 1)}
    unchanged = _transformers(decoder_only, baseline, PROMPT, None)
    if name not in _MAY_COINCIDE:
        assert expected.shape != unchanged.shape or (expected != unchanged).any(), f"{name} changes nothing"


def test_repetition_penalty_skips_left_padding_as_generate_does(decoder_only) -> None:
    """pad = eos here: without the prompt's mask the pads' penalty would make eos less likely."""
    generation = DECODER_ONLY | {"repetition_penalty": 0.5}
    expected = _transformers(decoder_only, generation, PROMPT, None)
    settings = generation_from_config(
        GenerationConfig(**generation).to_dict(), num_beams=None, max_length=None
    )
    unmasked = generate(TorchStep(decoder_only, PROMPT, PROMPT_MASK, None), 3, settings, prompt=PROMPT)
    masked = _numpy(decoder_only, generation, PROMPT, None)
    _assert_same(expected, masked, generation)
    assert masked != unmasked


def test_default_length_is_capped_at_max_position_embeddings(decoder_only) -> None:
    """No max_length anywhere: generate makes 20 new tokens, but no more than the model's positions."""
    long_prompt = np.tile(PROMPT[1], (3, 10))[:, :50]
    generation = {"bos_token_id": 0, "eos_token_id": 47, "pad_token_id": PAD, "num_beams": 2}
    decoder_only.generation_config = GenerationConfig(**generation)
    with torch.no_grad():
        expected = decoder_only.generate(input_ids=torch.from_numpy(long_prompt)).numpy()
    settings = generation_from_config(
        GenerationConfig(**generation).to_dict(),
        num_beams=None,
        max_length=None,
        max_position_embeddings=decoder_only.config.max_position_embeddings,
    )
    ones = np.ones_like(long_prompt)
    ours = generate(TorchStep(decoder_only, long_prompt, ones, None), 3, settings, prompt=long_prompt)
    assert expected.shape[1] == 64 < 50 + 20
    _assert_same(expected, ours, generation)


_ENCODER_DECODER_CASES = [
    ("greedy", {}),
    ("beams-2", {"num_beams": 2}),
    ("beams-4-length-penalty-negative", {"num_beams": 4, "length_penalty": -0.5}),
    ("florence-2", FLORENCE),
    ("florence-2-length-penalty-two", FLORENCE | {"length_penalty": 2.0}),
    ("greedy-forced-bos-eos", {"forced_bos_token_id": 0, "forced_eos_token_id": 2}),
    ("beams-3-repetition", {"num_beams": 3, "repetition_penalty": 1.6}),
    (
        "beams-3-begin-suppress-after-forced-bos",
        {"num_beams": 3, "forced_bos_token_id": 0, "begin_suppress_tokens": [31, 36]},
    ),
    ("beams-3-min-new-tokens", {"num_beams": 3, "min_new_tokens": 9}),
]


@pytest.mark.parametrize(
    "decoder_prompt", [None, np.array([[2, 0]] * 3), np.array([[2, 0, 9]] * 3)], ids=["start", "two", "three"]
)
@pytest.mark.parametrize(
    ("name", "change"), _ENCODER_DECODER_CASES, ids=[name for name, _ in _ENCODER_DECODER_CASES]
)
def test_encoder_decoder_equals_generate(encoder_decoder, name: str, change: dict, decoder_prompt) -> None:
    generation = ENCODER_DECODER | change
    expected = _transformers(encoder_decoder, generation, decoder_prompt, SOURCE)
    _assert_same(expected, _numpy(encoder_decoder, generation, decoder_prompt, SOURCE), generation)
    if set(change) - {"num_beams"} and decoder_prompt is None:
        baseline = ENCODER_DECODER | {"num_beams": change.get("num_beams", 1)}
        unchanged = _transformers(encoder_decoder, baseline, decoder_prompt, SOURCE)
        assert expected.shape != unchanged.shape or (expected != unchanged).any(), (
            f"{name} changes nothing here"
        )


def test_encoder_decoder_outputs_are_not_degenerate(encoder_decoder) -> None:
    rows = []
    for beams in (1, 3, 4):
        rows += _transformers(encoder_decoder, ENCODER_DECODER | {"num_beams": beams}, None, SOURCE).tolist()
    assert len({tuple(row) for row in rows}) >= 6, rows  # the images (sources) and the searches differ
    ends = [2 in row[1:] for row in rows]
    assert 2 <= sum(ends) <= len(ends) - 2, rows  # some rows end at eos, some reach max_length
