"""Beam search and greedy search in numpy, reproducing transformers' (5.x) `generate` step for step.

The model is a callback, `step(tokens, parents) -> (logits, log_probs)`: `tokens` (rows,) int64 are the
last token of each running row; `parents` (rows,) says which row of the previous step each row continues
(None when the rows are unchanged: the first step, and every step of greedy search), so the caller
reorders its cache; it returns float32 (rows, vocab) logits and their log-softmax. Rows are image-major:
row = image * num_beams + beam, as in transformers.

Reproduced: num_beams (1 = greedy), max_length, min_length, length_penalty, early_stopping (True, False,
"never"), one or several eos ids, pad filling; score arithmetic in float32 with the same -1e9 masks;
top-k ties broken towards the lower index, as torch.topk does. Anything else is refused before this
runs (captioning/function/generation.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from captioning.function.generation import Generation

Step = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]
_MASK = np.float32(-1.0e9)


def generate(step: Step, batch_size: int, settings: Generation) -> list[list[int]]:
    """Token ids per image (the decoder start token first, up to and including eos, no padding)."""
    if settings.num_beams == 1:
        return _greedy(step, batch_size, settings)
    return _beam_search(step, batch_size, settings)


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


def _min_length_mask(scores: np.ndarray, length: int, settings: Generation) -> np.ndarray:
    if settings.eos_token_ids and length < settings.min_length:
        scores = scores.copy()
        scores[:, list(settings.eos_token_ids)] = -np.inf
    return scores


def _greedy(step: Step, batch_size: int, settings: Generation) -> list[list[int]]:
    eos = np.asarray(settings.eos_token_ids, dtype=np.int64)
    tokens = np.full((batch_size, 1), settings.decoder_start_token_id, dtype=np.int64)
    unfinished = np.ones(batch_size, dtype=bool)
    while True:
        logits, _ = step(tokens[:, -1], None)
        scores = _min_length_mask(logits.astype(np.float32, copy=False), tokens.shape[1], settings)
        next_tokens = np.argmax(scores, axis=-1).astype(np.int64)
        if eos.size:
            next_tokens = np.where(unfinished, next_tokens, settings.pad_token_id)
        tokens = np.concatenate([tokens, next_tokens[:, None]], axis=1)
        if eos.size:
            unfinished &= ~np.isin(next_tokens, eos)
        if tokens.shape[1] >= settings.max_length or not unfinished.any():
            break
    return [_until_eos(row, eos) for row in tokens]


def _until_eos(row: np.ndarray, eos: np.ndarray) -> list[int]:
    ids = row.tolist()
    for position in range(1, len(ids)):
        if ids[position] in eos:
            return ids[: position + 1]
    return ids


def _beam_search(step: Step, batch_size: int, settings: Generation) -> list[list[int]]:  # noqa: C901
    beams, max_length = settings.num_beams, settings.max_length
    eos = np.asarray(settings.eos_token_ids, dtype=np.int64)
    length_penalty, early_stopping = settings.length_penalty, settings.early_stopping
    prompt_length = cur_len = 1
    beams_to_keep = max(2, 1 + eos.size) * beams
    top_beam_mask = np.arange(beams_to_keep) < beams
    fill = (settings.pad_token_id or int(eos[0])) if eos.size else -1

    running = np.full((batch_size, beams, max_length), fill, dtype=np.int64)
    running[:, :, 0] = settings.decoder_start_token_id
    sequences = running.copy()
    lengths = np.ones((batch_size, beams), dtype=np.int64)  # generated length + 1 of each finished slot
    running_scores = np.zeros((batch_size, beams), dtype=np.float32)
    running_scores[:, 1:] = _MASK
    beam_scores = np.full((batch_size, beams), _MASK, dtype=np.float32)
    finished = np.zeros((batch_size, beams), dtype=bool)
    improvable = np.ones((batch_size, 1), dtype=bool)
    parents: np.ndarray | None = None
    batch_offset = (np.arange(batch_size) * beams)[:, None]

    while True:
        _, log_probs = step(running[:, :, cur_len - 1].reshape(-1), parents)
        log_probs = _min_length_mask(log_probs.astype(np.float32, copy=False), cur_len, settings)
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
