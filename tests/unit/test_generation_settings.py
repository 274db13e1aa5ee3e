"""Generation settings read from a generation config (captioning/function/generation.py) and the numpy
logits processors (captioning/function/beam_search.py), against transformers' own classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.generation import logits_process

from captioning.function import beam_search
from captioning.function.beam_search import LogitsProcessors, generate
from captioning.function.generation import Generation, UnsupportedGeneration, generation_from_config

FLORENCE_2_BASE = {  # the fields Florence-2-base's generation_config.json sets
    "bos_token_id": 0,
    "decoder_start_token_id": 2,
    "eos_token_id": 2,
    "pad_token_id": 1,
    "num_beams": 3,
    "no_repeat_ngram_size": 3,
    "early_stopping": True,
    "forced_bos_token_id": 0,
    "forced_eos_token_id": 2,
}


def _settings(config: dict, **caller) -> Generation:
    return generation_from_config(
        config, num_beams=caller.get("num_beams"), max_length=caller.get("max_length")
    )


def test_florence_2_settings_are_reproduced_not_refused() -> None:
    settings = _settings(FLORENCE_2_BASE)
    assert (settings.num_beams, settings.no_repeat_ngram_size, settings.early_stopping) == (3, 3, True)
    assert (settings.forced_bos_token_id, settings.forced_eos_token_ids) == (0, (2,))
    assert settings.max_length_for(1) == 21  # no max_length: 20 new tokens, as generate makes


def test_lengths_follow_the_prompt_as_generate_does() -> None:
    new_tokens = _settings({"bos_token_id": 0, "max_new_tokens": 5, "min_new_tokens": 2})
    assert (new_tokens.max_length_for(7), new_tokens.min_length_for(7), new_tokens.max_length) == (12, 9, 6)
    absolute = _settings({"bos_token_id": 0, "max_new_tokens": 5, "min_length": 4}, max_length=9)
    assert (absolute.max_length_for(7), absolute.min_length_for(7)) == (9, 4)  # the caller's max_length wins
    capped = generation_from_config(
        {"bos_token_id": 0}, num_beams=None, max_length=None, max_position_embeddings=30
    )
    assert (capped.max_length_for(5), capped.max_length_for(25)) == (25, 30)


@pytest.mark.parametrize(
    ("config", "caller", "message"),
    [
        ({"do_sample": True, "token_healing": True}, {}, "do_sample=True, token_healing=True"),
        ({"forced_eos_token_id": [2, 3]}, {"num_beams": 2}, r"forced_eos_token_id=\[2, 3\] with num_beams=2"),
        ({"repetition_penalty": 0.0}, {}, "repetition_penalty must be positive; got 0.0"),
        (
            {"no_repeat_ngram_size": 2.5},
            {},
            "no_repeat_ngram_size in the generation config must be an integer",
        ),
        ({"suppress_tokens": ["a"]}, {}, "suppress_tokens in the generation config must be an integer"),
        (
            {"length_penalty": "long"},
            {},
            "length_penalty in the generation config must be a number; got 'long'",
        ),
    ],
)
def test_what_cannot_be_reproduced_is_refused_by_name(config: dict, caller: dict, message: str) -> None:
    with pytest.raises(UnsupportedGeneration, match=message):
        _settings({"bos_token_id": 0} | config, **caller)
    # several forced eos ids are fine in greedy search: argmax takes the first, as torch.argmax does
    _settings({"bos_token_id": 0, "forced_eos_token_id": [2, 3]})


def test_a_prompt_as_long_as_max_length_is_refused() -> None:
    settings = _settings({"bos_token_id": 0, "max_length": 4})
    with pytest.raises(ValueError, match="the prompt is 4 tokens long but max_length is 4"):
        generate(lambda tokens, parents: (None, None), 1, settings, prompt=np.zeros((1, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"prompt must be \(batch_size=2"):
        generate(lambda tokens, parents: (None, None), 2, settings, prompt=np.zeros((1, 2), dtype=np.int64))


def _random(rows: int = 6, vocab: int = 20, length: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = (rng.standard_normal((rows, vocab)) * 4).astype(np.float32)
    input_ids = rng.integers(
        0, vocab + 3, (rows, length)
    )  # a few ids past the output vocab, as transformers allows
    input_ids[:, 3:] = np.tile(input_ids[:, :3], 2)  # periods of 3, so n-grams recur
    return scores, input_ids


@pytest.mark.parametrize("penalty", [0.7, 1.3, 2.0])
def test_repetition_penalty_equals_transformers(penalty: float) -> None:
    scores, input_ids = _random()
    padding = np.array([0, 2, 0, 5, 1, 0])
    for skip in (None, padding):
        processor = logits_process.RepetitionPenaltyLogitsProcessor(
            penalty, prompt_ignore_length=None if skip is None else torch.from_numpy(skip)
        )
        expected = processor(torch.from_numpy(input_ids), torch.from_numpy(scores.copy())).numpy()
        np.testing.assert_array_equal(
            beam_search.repetition_penalty(scores, input_ids, penalty, skip), expected
        )
    assert not np.array_equal(beam_search.repetition_penalty(scores, input_ids, penalty), scores)


@pytest.mark.parametrize("size", [1, 2, 3, 9, 10])
def test_no_repeat_ngram_equals_transformers(size: int) -> None:
    scores, input_ids = _random()
    input_ids = input_ids % 20
    expected = logits_process.NoRepeatNGramLogitsProcessor(size)(
        torch.from_numpy(input_ids), torch.from_numpy(scores.copy())
    )
    ours = beam_search.no_repeat_ngram(scores, input_ids, size)
    np.testing.assert_array_equal(ours, expected.numpy())
    if size <= 3:
        assert np.isinf(ours).any()


def test_the_processors_run_in_generates_order() -> None:
    """Forced BOS replaces every score; suppressing after it can remove the forced token itself."""
    scores, _ = _random()
    settings = Generation(
        num_beams=1, max_length=10, decoder_start_token_id=2, forced_bos_token_id=4, suppress_tokens=(4, 7)
    )
    prompt = np.full((6, 1), 2, dtype=np.int64)
    processed = LogitsProcessors(settings, prompt, None)(prompt, scores)
    expected = logits_process.LogitsProcessorList(
        [
            logits_process.ForcedBOSTokenLogitsProcessor(4),
            logits_process.SuppressTokensLogitsProcessor([4, 7]),
        ]
    )(torch.from_numpy(prompt), torch.from_numpy(scores.copy()))
    np.testing.assert_array_equal(processed, expected.numpy())
    assert np.isneginf(processed).all()
