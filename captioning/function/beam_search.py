"""Greedy and beam search in numpy, reproducing transformers' (5.x) `generate` step for step.

The model is a callback, `step(tokens, parents) -> (logits, log_probs)`: `tokens` (rows,) int64 are the
last token of each running row (on the first call the prompt's last column: the adapter answers that
call with the logits of its prefill); `parents` (rows,) says which row of the previous step each row
continues (None when the rows are unchanged: the first step, and every step of greedy search), so the
caller reorders its cache; it returns float32 (rows, vocab) logits and their log-softmax. Rows are
image-major: row = image * num_beams + beam, as in transformers.

Reproduced: greedy and beam search; a prompt (rows of different lengths left-padded, as transformers
wants them); max_length / max_new_tokens, min_length / min_new_tokens, length_penalty, early_stopping
(True, False, "never"), one or several eos ids, pad filling; the logits processors repetition_penalty,
no_repeat_ngram_size, forced_bos_token_id, forced_eos_token_id, suppress_tokens and
begin_suppress_tokens, in transformers' order, on the logits in greedy search and on the log-softmax in
beam search as transformers applies them; score arithmetic in float32 with the same -1e9 masks; top-k
ties broken towards the lower index, as torch.topk does. Anything else is refused before this runs
(captioning/function/generation.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from captioning.function.generation import Generation

Step = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]
_MASK = np.float32(-1.0e9)


def generate(
    step: Step,
    batch_size: int,
    settings: Generation,
    prompt: np.ndarray | None = None,
    prompt_mask: np.ndarray | None = None,
) -> list[list[int]]:
    """Token ids per image: the whole row, prompt first, up to and including eos, no padding after it.

    `prompt` (batch_size, prompt_length) int64: the tokens every row holds before generation, what
    generate gets as decoder_input_ids (encoder-decoders) or input_ids (decoder-only models), rows of
    different lengths left-padded; None: one column of settings.decoder_start_token_id.
    `prompt_mask` (batch_size, prompt_length): the attention mask generate gets with them (0 on padding);
    only repetition_penalty reads it, skipping each row's left padding as transformers does.
    """
    prompt = _prompt(batch_size, settings, prompt)
    processors = LogitsProcessors(settings, prompt, prompt_mask)
    if settings.num_beams == 1:
        return _greedy(step, prompt, settings, processors)
    return _beam_search(step, prompt, settings, processors)


def _prompt(batch_size: int, settings: Generation, prompt: np.ndarray | None) -> np.ndarray:
    if prompt is None:
        return np.full((batch_size, 1), settings.decoder_start_token_id, dtype=np.int64)
    prompt = np.asarray(prompt)
    if prompt.ndim != 2 or prompt.shape[0] != batch_size or prompt.shape[1] < 1:
        raise ValueError(
            f"prompt must be (batch_size={batch_size}, length >= 1) token ids; got {prompt.shape}"
        )
    if not np.issubdtype(prompt.dtype, np.integer):
        raise ValueError(f"prompt must hold integer token ids; got {prompt.dtype}")
    max_length = settings.max_length_for(prompt.shape[1])
    if prompt.shape[1] >= max_length:
        raise ValueError(
            f"the prompt is {prompt.shape[1]} tokens long but max_length is {max_length}: nothing would be"
            " generated; raise max_length or shorten the prompt"
        )
    return prompt.astype(np.int64)


class LogitsProcessors:
    """transformers' _get_logits_processor for the settings `Generation` holds, in its order."""

    def __init__(self, settings: Generation, prompt: np.ndarray, prompt_mask: np.ndarray | None) -> None:
        self.settings = settings
        prompt_length = prompt.shape[1]
        self.max_length = settings.max_length_for(prompt_length)
        self.min_length = settings.min_length_for(prompt_length)
        self.eos = list(settings.eos_token_ids)
        forced_bos_first = prompt_length == 1 and settings.forced_bos_token_id is not None
        self.begin_index = prompt_length + 1 if forced_bos_first else prompt_length
        self.padding: np.ndarray | None = None
        if prompt_mask is not None:
            mask = np.asarray(prompt_mask)
            if mask.shape != prompt.shape:
                raise ValueError(f"prompt_mask must have the prompt's shape {prompt.shape}; got {mask.shape}")
            self.padding = np.argmax(mask != 0, axis=1)  # leading zeros, as generate counts them

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """`scores` (rows, vocab) for the token after each row of `input_ids` (rows, length)."""
        settings, length = self.settings, input_ids.shape[1]
        scores = scores.astype(np.float32, copy=False)
        if settings.repetition_penalty != 1.0:
            scores = repetition_penalty(
                scores, input_ids, settings.repetition_penalty, self._padding(input_ids)
            )
        if settings.no_repeat_ngram_size > 0:
            scores = no_repeat_ngram(scores, input_ids, settings.no_repeat_ngram_size)
        if self.eos and self.min_length > 0 and length < self.min_length:
            scores = _suppress(scores, self.eos)
        if settings.forced_bos_token_id is not None and length == 1:
            scores = _force(scores, [settings.forced_bos_token_id])
        if settings.forced_eos_token_ids and length == self.max_length - 1:
            scores = _force(scores, list(settings.forced_eos_token_ids))
        if settings.suppress_tokens:
            scores = _suppress(scores, list(settings.suppress_tokens))
        if settings.begin_suppress_tokens and length == self.begin_index:
            scores = _suppress(scores, list(settings.begin_suppress_tokens))
        return scores

    def _padding(self, input_ids: np.ndarray) -> np.ndarray | None:
        if self.padding is None:
            return None
        return np.repeat(self.padding, len(input_ids) // len(self.padding))


def repetition_penalty(
    scores: np.ndarray, input_ids: np.ndarray, penalty: float, padding: np.ndarray | None = None
) -> np.ndarray:
    """RepetitionPenaltyLogitsProcessor: each token already in a row (its first `padding` positions
    skipped) scores less: multiplied by `penalty` when negative, divided by it otherwise."""
    rows, vocab = scores.shape
    ids = np.minimum(input_ids, vocab)
    if padding is not None:
        ids = np.where(np.arange(ids.shape[1])[None, :] < padding[:, None], vocab, ids)
    seen = np.zeros((rows, vocab + 1), dtype=bool)
    seen[np.arange(rows)[:, None], ids] = True
    factor = np.float32(penalty)
    penalised = np.where(scores < 0, scores * factor, scores / factor)
    return np.where(seen[:, :vocab], penalised, scores)


def no_repeat_ngram(scores: np.ndarray, input_ids: np.ndarray, size: int) -> np.ndarray:
    """NoRepeatNGramLogitsProcessor: no row repeats an n-gram of `size` tokens it already holds."""
    rows, vocab = scores.shape
    length = input_ids.shape[1]
    if length < size:
        return scores
    windows = np.lib.stride_tricks.sliding_window_view(input_ids, size, axis=1)
    prefix = input_ids[:, length + 1 - size :]
    matches = (windows[..., :-1] == prefix[:, None, :]).all(axis=-1)
    banned = np.zeros((rows, vocab + 1), dtype=bool)
    banned[np.arange(rows)[:, None], np.where(matches, np.minimum(windows[..., -1], vocab), vocab)] = True
    return np.where(banned[:, :vocab], np.float32(-np.inf), scores)


def _suppress(scores: np.ndarray, tokens: list[int]) -> np.ndarray:
    vocab = scores.shape[1]
    scores = scores.copy()
    scores[:, [token for token in tokens if token < vocab]] = -np.inf
    return scores


def _force(scores: np.ndarray, tokens: list[int]) -> np.ndarray:
    forced = np.full_like(scores, -np.inf)
    forced[:, tokens] = 0.0
    return forced


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a 2-D array: the k largest values, largest first, ties in ascending index order."""
    rows, width = scores.shape
    indices = np.empty((rows, k), dtype=np.int64)
    for row in range(rows):
        values = scores[row]
        if width > 4 * k:
            kth = -np.partition(-values, k - 1)[k - 1]
            candidates = np.flatnonzero(values >= kth)
        else:
            candidates = np.arange(width)
        order = np.argsort(-values[candidates], kind="stable")[:k]
        indices[row] = candidates[order]
    return np.take_along_axis(scores, indices, axis=1), indices


def _take(array: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """transformers' _gather_beams: along axis 1, by (batch, n) indices."""
    while indices.ndim < array.ndim:
        indices = indices[..., None]
    return np.take_along_axis(array, indices, axis=1)


def _greedy(
    step: Step, prompt: np.ndarray, settings: Generation, processors: LogitsProcessors
) -> list[list[int]]:
    eos = np.asarray(settings.eos_token_ids, dtype=np.int64)
    tokens = prompt
    unfinished = np.ones(len(prompt), dtype=bool)
    while True:
        logits, _ = step(tokens[:, -1], None)
        scores = processors(tokens, logits)
        next_tokens = np.argmax(scores, axis=-1).astype(np.int64)
        if eos.size:
            next_tokens = np.where(unfinished, next_tokens, settings.pad_token_id)
        tokens = np.concatenate([tokens, next_tokens[:, None]], axis=1)
        if eos.size:
            unfinished &= ~np.isin(next_tokens, eos)
        if tokens.shape[1] >= processors.max_length or not unfinished.any():
            break
    return [_until_eos(row, eos, prompt.shape[1]) for row in tokens]


def _until_eos(row: np.ndarray, eos: np.ndarray, start: int) -> list[int]:
    ids = row.tolist()
    for position in range(start, len(ids)):
        if ids[position] in eos:
            return ids[: position + 1]
    return ids


def _beam_search(  # noqa: C901
    step: Step, prompt: np.ndarray, settings: Generation, processors: LogitsProcessors
) -> list[list[int]]:
    batch_size, prompt_length = prompt.shape
    beams, max_length = settings.num_beams, processors.max_length
    eos = np.asarray(settings.eos_token_ids, dtype=np.int64)
    length_penalty, early_stopping = settings.length_penalty, settings.early_stopping
    cur_len = prompt_length
    beams_to_keep = max(2, 1 + eos.size) * beams
    top_beam_mask = np.arange(beams_to_keep) < beams
    fill = (settings.pad_token_id or int(eos[0])) if eos.size else -1  # a pad id of 0 falls back, as there

    running = np.full((batch_size, beams, max_length), fill, dtype=np.int64)
    running[:, :, :prompt_length] = prompt[:, None, :]
    sequences = running.copy()
    lengths = np.full((batch_size, beams), prompt_length, dtype=np.int64)  # of each finished slot
    running_scores = np.zeros((batch_size, beams), dtype=np.float32)
    running_scores[:, 1:] = _MASK
    beam_scores = np.full((batch_size, beams), _MASK, dtype=np.float32)
    finished = np.zeros((batch_size, beams), dtype=bool)
    improvable = np.ones((batch_size, 1), dtype=bool)
    parents: np.ndarray | None = None
    batch_offset = (np.arange(batch_size) * beams)[:, None]

    while True:
        flat_running = running[:, :, :cur_len].reshape(batch_size * beams, cur_len)
        _, log_probs = step(flat_running[:, -1], parents)
        log_probs = processors(flat_running, log_probs)
        vocab = log_probs.shape[-1]
        accumulated = log_probs.reshape(batch_size, beams, vocab) + running_scores[:, :, None]
        topk_scores, topk_indices = topk(accumulated.reshape(batch_size, beams * vocab), beams_to_keep)
        topk_beams = topk_indices // vocab
        topk_sequences = _take(running, topk_beams)
        topk_sequences[:, :, cur_len] = topk_indices % vocab

        hits = np.isin(topk_sequences[:, :, cur_len], eos) if eos.size else np.zeros_like(top_beam_mask)
        hits = np.broadcast_to(hits | (cur_len + 1 >= max_length), topk_scores.shape)

        # e. the best num_beams unfinished continuations run on
        running_topk_scores = topk_scores + hits.astype(np.float32) * _MASK
        next_indices = topk(running_topk_scores, beams)[1]
        running = _take(topk_sequences, next_indices)
        running_scores = _take(running_topk_scores, next_indices)
        parents = (_take(topk_beams, next_indices) + batch_offset).reshape(-1)

        # f. finished hypotheses replace worse finished ones
        just_finished = hits & top_beam_mask[None, :]
        finished_scores = topk_scores / np.float32((cur_len + 1 - prompt_length) ** length_penalty)
        batch_full = finished.all(axis=-1, keepdims=True) & (early_stopping is True)
        finished_scores = finished_scores + batch_full.astype(np.float32) * _MASK
        finished_scores = finished_scores + (~improvable).astype(np.float32) * _MASK
        finished_scores = finished_scores + (~just_finished).astype(np.float32) * _MASK
        merged_scores = np.concatenate([beam_scores, finished_scores], axis=1)
        keep = topk(merged_scores, beams)[1]
        sequences = _take(np.concatenate([sequences, topk_sequences], axis=1), keep)
        beam_scores = _take(merged_scores, keep)
        lengths = _take(np.concatenate([lengths, np.full_like(topk_beams, cur_len + 1)], axis=1), keep)
        finished = _take(np.concatenate([finished, just_finished], axis=1), keep)

        cur_len += 1
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - prompt_length
        else:
            best_length = cur_len - prompt_length
        best_running = running_scores[:, :1] / np.float32(best_length**length_penalty)
        worst_finished = np.where(finished, beam_scores.min(axis=1, keepdims=True), _MASK)
        improvable = improvable & (best_running > worst_finished).any(axis=-1, keepdims=True)
        open_beam = not (finished.all() and early_stopping is True)
        if not (improvable.any() and open_beam and not hits.all()):
            break

    return [sequences[image, 0, : lengths[image, 0]].tolist() for image in range(batch_size)]
