"""One family pipeline in one fresh process: cold start to the first caption, then a timed batch of ten
and a timed warm one-image caption, with the bytes read and the peak memory.

Prints one JSON line. Phases are measured from ``--spawned-at`` (the parent's clock just before it
started this process), as bench/coldstart_child.py does: import (interpreter start-up included), load
(Captioner.load), first caption (one 12 MP JPEG, decoded as the function decodes it). ``read_bytes``
(/proc/self/io: storage reads, mmapped files' page faults included) is taken when the first caption is
ready. Then the batch of ten (one Captioner.caption call, as queue mode sends it) and the same 12 MP JPEG
again (warm latency). Peak memory is VmHWM at the end (bench/memory.py).
"""

from __future__ import annotations

import time

CHILD_STARTED_AT = time.time()

import argparse  # noqa: E402  the clock above must start before any import
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.coldstart_child import read_bytes_so_far  # noqa: E402
from bench.memory import peak_rss_bytes  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--first-image", type=Path, required=True)
    parser.add_argument("--batch-images", type=Path, nargs="+", required=True)
    parser.add_argument("--spawned-at", type=float, required=True)
    args = parser.parse_args(argv)

    from bench.project import ProjectPipeline
    from captioning.function.captioner import Captioner  # noqa: F401
    from captioning.function.images import load_image  # noqa: F401

    imported_at = time.time()
    pipeline = ProjectPipeline(args.model_dir, precision=args.precision)
    loaded_at = time.time()
    first_image = args.first_image.read_bytes()
    first_caption = pipeline.caption_jpeg(first_image)
    captioned_at = time.time()
    cold_read_bytes = read_bytes_so_far()
    rss_after_first = peak_rss_bytes()

    batch = [path.read_bytes() for path in args.batch_images]
    started = time.perf_counter()
    batch_captions = pipeline.caption_jpegs(batch)
    batch_s = time.perf_counter() - started
    started = time.perf_counter()
    pipeline.caption_jpeg(first_image)
    latency_s = time.perf_counter() - started

    print(
        json.dumps(
            {
                "runtime": pipeline.captioner.runtime,
                "imported": sorted(m for m in ("torch", "transformers", "onnxruntime") if m in sys.modules),
                "import_s": imported_at - args.spawned_at,
                "load_s": loaded_at - imported_at,
                "first_inference_s": captioned_at - loaded_at,
                "cold_start_s": captioned_at - args.spawned_at,
                "read_bytes": cold_read_bytes,
                "peak_rss_first_caption_bytes": rss_after_first,
                "peak_rss_bytes": peak_rss_bytes(),
                "batch_size": len(batch),
                "batch_s": batch_s,
                "images_per_s": len(batch) / batch_s,
                "latency_s": latency_s,
                "first_caption": first_caption,
                "batch_captions": batch_captions,
            }
        )
    )


if __name__ == "__main__":
    main()
