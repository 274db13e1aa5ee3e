"""Memory sizes the benchmark ran the function image at, and what happened: the one home of those figures
in the package (the wheel has no bench/, so nothing reads bench/results.json at deploy time;
tests/unit/test_measured_memory.py holds this table equal to it).

How they were measured (`python -m bench.container`, docs/performance.md "Sizing and cost"): the function
image of each runtime and precision, with the benchmark's full-size model (the architecture of
nlpconnect/vit-gpt2-image-captioning, random weights, default generation settings), run at each size
with Lambda's CPU share (`docker run --cpus M/1769 --memory M --memory-swap M`). One process loaded the
model and captioned one 12 MP JPEG (a direct invocation), then a batch of ten 800x600 JPEGs in one call
(a queue batch of 10), then the 12 MP JPEG again. A size works when all three calls finished. A run
that was killed for memory (OOM) or stuck at the limit until stopped (timed out) did not record which
call it died in, so a failure counts against every trigger mode and batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKS, OUT_OF_MEMORY, TIMED_OUT = "works", "out of memory", "timed out"
SOURCE = 'docs/performance.md, "Sizing and cost"'


@dataclass(frozen=True)
class MeasuredSizes:
    """What the function did at each measured memory size, for one model, runtime and precision."""

    model_id: str
    runtime: str
    precision: str
    images_per_call: int
    """The largest caption call each run made (its batch): measurements cover queue batches up to this."""
    outcomes: tuple[tuple[int, str], ...]
    """(memory MB, WORKS / OUT_OF_MEMORY / TIMED_OUT), smallest size first."""

    @property
    def floor_mb(self) -> int | None:
        """The smallest size that worked with every larger measured size working too (the bench's
        `smallest_memory_without_oom`); None when no size qualifies."""
        failed = [size for size, outcome in self.outcomes if outcome != WORKS]
        working = [size for size, outcome in self.outcomes if outcome == WORKS]
        candidates = [size for size in working if all(size > bad for bad in failed)]
        return min(candidates) if candidates else None

    @property
    def failures(self) -> tuple[tuple[int, str], ...]:
        return tuple((size, outcome) for size, outcome in self.outcomes if outcome != WORKS)

    def covers(self, images: int) -> bool:
        """Whether the runs made caption calls as large as `images` (one image, or a batch up to theirs)."""
        return 1 <= images <= self.images_per_call


def _runs(works: tuple[int, ...], **failed: tuple[int, ...]) -> tuple[tuple[int, str], ...]:
    outcomes = {size: WORKS for size in works}
    labels = {"out_of_memory": OUT_OF_MEMORY, "timed_out": TIMED_OUT}
    for kind, sizes in failed.items():
        outcomes.update({size: labels[kind] for size in sizes})
    return tuple(sorted(outcomes.items()))


_ALL_SIZES = (1024, 1536, 1769, 2048, 2560, 3008, 3538)
VIT_GPT2 = "nlpconnect/vit-gpt2-image-captioning"

# bench/results.json, raw.images.lambda_sizes (measured 2026-11-28 on a 2-core AMD EPYC).
MEASURED: tuple[MeasuredSizes, ...] = (
    MeasuredSizes(VIT_GPT2, "torch", "fp32", 10, _runs(_ALL_SIZES)),
    MeasuredSizes(VIT_GPT2, "torch", "int8", 10, _runs(_ALL_SIZES[1:], out_of_memory=(1024,))),
    MeasuredSizes(
        VIT_GPT2, "onnx", "fp32", 10, _runs(_ALL_SIZES[3:], out_of_memory=(1536, 1769), timed_out=(1024,))
    ),
    MeasuredSizes(VIT_GPT2, "onnx", "int8", 10, _runs(_ALL_SIZES[1:], timed_out=(1024,))),
)

ARCHITECTURES: dict[str, dict[str, object]] = {
    VIT_GPT2: {
        "model_type": "vision-encoder-decoder",
        "encoder.model_type": "vit",
        "encoder.hidden_size": 768,
        "encoder.num_hidden_layers": 12,
        "encoder.intermediate_size": 3072,
        "encoder.image_size": 224,
        "encoder.patch_size": 16,
        "decoder.model_type": "gpt2",
        "decoder.n_embd": 768,
        "decoder.n_layer": 12,
        "decoder.vocab_size": 50257,
    },
}
"""config.json values that identify a measured model's architecture in a prepared model directory
(the measurements hold for any weights of the same shapes)."""


def measured(model_id: str, runtime: str, precision: str) -> MeasuredSizes | None:
    """The measured sizes for this model (Hub id, any case), runtime and precision, if any."""
    for sizes in MEASURED:
        if (sizes.model_id, sizes.runtime, sizes.precision) == (model_id.lower(), runtime, precision):
            return sizes
    return None


def measured_architecture(config: dict) -> str | None:
    """The measured model whose architecture a config.json describes, or None."""
    for model_id, signature in ARCHITECTURES.items():
        if all(_lookup(config, path) == value for path, value in signature.items()):
            return model_id
    return None


def _lookup(config: dict, path: str) -> object:
    value: object = config
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
