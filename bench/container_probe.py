"""Runs inside the function image (`docker run --cpus C --memory M ...`): the image's own libraries and
handler code caption the benchmark inputs with a mounted model; one JSON line on stdout.

Only the standard library and the image's own `captioning.function` are imported here (no torch in the
onnx image). Phases: import, load, first caption of the 12 MP JPEG (a cold invocation's work), a batch of 10
(one queue-mode invocation), then the 12 MP JPEG again (a warm invocation).
"""

from __future__ import annotations

import time

STARTED_AT = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.memory import peak_rss_bytes  # noqa: E402


def _cgroup_peak() -> int | None:
    """The container's own memory high-water mark (cgroup v2 memory.peak), page cache included."""
    path = Path("/sys/fs/cgroup/memory.peak")
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--large", type=Path, required=True)
    parser.add_argument("--batch", type=Path, nargs="+", required=True)
    args = parser.parse_args(argv)

    from captioning.function.captioner import Captioner
    from captioning.function.images import load_image

    imported = time.perf_counter()
    captioner = Captioner.load(args.model_dir, precision=args.precision)
    loaded = time.perf_counter()
    large = args.large.read_bytes()
    batch = [path.read_bytes() for path in args.batch]
    captioner.caption([load_image(large)])
    first = time.perf_counter()
    captioner.caption([load_image(data) for data in batch])
    batched = time.perf_counter()
    captioner.caption([load_image(large)])
    warm = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": imported - STARTED_AT,
                "load_s": loaded - imported,
                "first_caption_s": first - loaded,
                "batch_s": batched - first,
                "batch_size": len(batch),
                "latency_s": warm - batched,
                "peak_rss_bytes": peak_rss_bytes(),
                "cgroup_peak_bytes": _cgroup_peak(),
                "torch_imported": "torch" in sys.modules,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
