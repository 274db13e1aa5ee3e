"""One cold start, run as a fresh process: imports, model load, first caption, then a batch.

Prints one JSON line. Wall-clock phases are measured from ``--spawned-at`` (the parent's clock
just before it started this process), so interpreter start-up counts as import time. The bytes
read from disk come from /proc/self/io (``read_bytes``: storage reads, page faults of mmapped
files included) at the moment the first caption is ready. Peak memory is this process's own
high-water mark (``VmHWM``, see bench/memory.py), after the first caption and the batch.
"""

from __future__ import annotations

import time

CHILD_STARTED_AT = time.time()

import argparse  # noqa: E402  the clock above must start before any import
import json  # noqa: E402
import sys  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.memory import peak_rss_bytes as peak_rss  # noqa: E402


def read_bytes_so_far() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "read_bytes":
            return int(value)
    raise RuntimeError("/proc/self/io has no read_bytes line")


def _version(distribution: str) -> str | None:
    """The version in use; never imports the package (the ONNX child must not import torch)."""
    module = sys.modules.get(distribution)
    if module is not None and hasattr(module, "__version__"):
        return module.__version__  # torch's carries the build, e.g. 2.14.1+cu130
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", choices=["baseline", "project"], required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--first-image", type=Path, required=True)
    parser.add_argument("--batch-images", type=Path, nargs="*", default=[])
    parser.add_argument("--spawned-at", type=float, required=True)
    args = parser.parse_args(argv)

    if args.pipeline == "baseline":
        # The original handler imported these at module level, as the project's captioner does.
        import PIL.Image  # noqa: F401
        import torch  # noqa: F401
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel  # noqa: F401

        from bench.baseline import BaselineCaptioner

        imported_at = time.time()
        pipeline = BaselineCaptioner(args.model_dir)
    else:
        from bench.project import ProjectPipeline
        from captioning.function.captioner import Captioner  # noqa: F401
        from captioning.function.images import load_image  # noqa: F401

        imported_at = time.time()
        pipeline = ProjectPipeline(args.model_dir, precision=args.precision)
    loaded_at = time.time()
    first_caption = pipeline.caption_jpeg(args.first_image.read_bytes())
    captioned_at = time.time()
    cold_start_read_bytes = read_bytes_so_far()

    batch_captions = pipeline.caption_jpegs([path.read_bytes() for path in args.batch_images])
    peak_rss_bytes = peak_rss()
    imported = sorted(name for name in ("torch", "transformers", "onnxruntime") if name in sys.modules)

    print(
        json.dumps(
            {
                "python": sys.executable,
                "torch_version": _version("torch"),
                "onnxruntime_version": _version("onnxruntime"),
                "imported": imported,
                "interpreter_start_s": CHILD_STARTED_AT - args.spawned_at,
                "import_s": imported_at - args.spawned_at,
                "load_s": loaded_at - imported_at,
                "first_inference_s": captioned_at - loaded_at,
                "total_s": captioned_at - args.spawned_at,
                "read_bytes": cold_start_read_bytes,
                "peak_rss_bytes": peak_rss_bytes,
                "first_caption": first_caption,
                "batch_captions": batch_captions,
            }
        )
    )


if __name__ == "__main__":
    main()
