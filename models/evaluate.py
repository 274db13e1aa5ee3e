"""Held-out accuracy of a captioning model on fresh spec draws: ``python -m models.evaluate``.

Each image goes the product's way: encoded bytes -> ``captioning.function.images.load_image`` ->
``Captioner.caption``; a caption counts only when it equals the spec caption exactly.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from captioning.function.images import load_image
from models import DEMO_MODEL_DIR, shapes
from ops.arguments import help_description, positive_int

DEFAULT_MODEL_DIR = DEMO_MODEL_DIR
# Far from the training seed; any seed the training script never used is a fresh draw.
DEFAULT_SEED = 987_654_321
PLAIN = "png-or-jpeg"
SETS: tuple[str, ...] = (PLAIN, *shapes.CONVERSIONS)

CaptionImages = Callable[[Sequence[Image.Image]], list[str]]


@dataclass
class Score:
    """Exact-match result of one evaluation set."""

    name: str
    total: int = 0
    correct: int = 0
    mistakes: list[tuple[str, str, shapes.ShapeSpec]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def held_out_uploads(
    seed: int, count: int, conversion: str | None = None
) -> Iterator[tuple[bytes, shapes.DemoImage]]:
    """``count`` fresh spec draws (mixed PNG/JPEG) as upload bytes, optionally converted as a user would."""
    rng = random.Random(seed)  # noqa: S311  reproducible draws, not security
    for _ in range(count):
        drawn = shapes.random_demo_image(rng)
        data = drawn.data if conversion is None else shapes.random_conversion(drawn.data, conversion, rng)
        yield data, drawn


def score(
    caption_images: CaptionImages,
    name: str,
    uploads: Iterator[tuple[bytes, shapes.DemoImage]],
    batch_size: int = 16,
) -> Score:
    result = Score(name)
    batch: list[tuple[bytes, shapes.DemoImage]] = []

    def flush() -> None:
        captions = caption_images([load_image(data) for data, _ in batch])
        for caption, (_, drawn) in zip(captions, batch, strict=True):
            result.total += 1
            if caption == drawn.caption:
                result.correct += 1
            else:
                result.mistakes.append((drawn.caption, caption, drawn.spec))
        batch.clear()

    for upload in uploads:
        batch.append(upload)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return result


def evaluate(
    caption_images: CaptionImages, *, seed: int, count: int, sets: Sequence[str] = SETS
) -> list[Score]:
    """Score each named set on its own fresh draw (seed offset per set so the sets differ)."""
    scores = []
    for offset, name in enumerate(SETS):
        if name not in sets:
            continue
        conversion = None if name == PLAIN else name
        scores.append(score(caption_images, name, held_out_uploads(seed + offset, count, conversion)))
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=help_description(__doc__))
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="captioning model directory (default: the demo model)",
    )
    parser.add_argument("--count", type=positive_int, default=500, help="images per set (default 500)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="held-out draw seed")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        choices=SETS,
        help="evaluate only this set (repeatable; default all)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="inference threads, at least 1 (default: all CPUs)"
    )
    parser.add_argument("--show-mistakes", action="store_true", help="print each wrong caption")
    arguments = parser.parse_args(argv)
    if not (arguments.model / "config.json").is_file():
        parser.error(f"--model {arguments.model}: no config.json there, not a model directory")

    from captioning.function.captioner import (
        Captioner,  # imported late: loading torch is slow and --help should not pay it
    )

    captioner = Captioner.load(arguments.model, num_threads=arguments.threads)
    started = time.monotonic()
    scores = evaluate(
        captioner.caption, seed=arguments.seed, count=arguments.count, sets=arguments.sets or SETS
    )
    elapsed = time.monotonic() - started
    for result in scores:
        print(f"{result.name:<18} {result.accuracy:7.2%}  ({result.correct}/{result.total})")
        if arguments.show_mistakes:
            for expected, got, spec in result.mistakes:
                print(f"    expected {expected!r} got {got!r}  {spec}")
    print(f"model {arguments.model}, seed {arguments.seed}, {elapsed:.0f} s")
    return 0 if all(result.accuracy >= 0.98 for result in scores) else 1


if __name__ == "__main__":
    raise SystemExit(main())
