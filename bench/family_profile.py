"""Where an ONNX family's time goes: `python -m bench.family_profile MODEL_DIR [--images N]`.

In this process (warm page cache): Captioner.load's seconds, then one batch of N 800×600 benchmark
images with every session's `run` timed by graph role (the encoder graph once per image; the decoder
step graph once per generated token), the rest being pixels, search and decoding. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from bench import DEFAULT_CACHE
from bench.inputs import ensure_inputs


class TimedSession:
    """An InferenceSession whose `run` calls are timed into ``totals[role]``."""

    def __init__(self, session, role: str, totals: dict, calls: dict) -> None:
        self._session, self._role, self._totals, self._calls = session, role, totals, calls

    def run(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._session.run(*args, **kwargs)
        finally:
            self._totals[self._role] += time.perf_counter() - started
            self._calls[self._role] += 1

    def __getattr__(self, name: str):
        return getattr(self._session, name)


def profile(model_dir: Path, images: int, cache_dir: Path = DEFAULT_CACHE) -> dict:
    from captioning.function.captioner import Captioner
    from captioning.function.images import load_image

    started = time.perf_counter()
    captioner = Captioner.load(model_dir)
    load_s = time.perf_counter() - started
    family = captioner.backend.family
    totals: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    family.sessions = {role: TimedSession(s, role, totals, calls) for role, s in family.sessions.items()}
    captioner.backend.sessions = family.sessions
    batch = [load_image(path.read_bytes()) for path in ensure_inputs(cache_dir).batch_jpegs[:images]]
    started = time.perf_counter()
    captioner.caption(batch)
    batch_s = time.perf_counter() - started
    in_graphs = sum(totals.values())
    return {
        "model_dir": str(model_dir),
        "family": family.family,
        "precision": captioner.precision,
        "load_s": round(load_s, 3),
        "images": len(batch),
        "batch_s": round(batch_s, 3),
        "session_seconds": {role: round(seconds, 3) for role, seconds in totals.items()},
        "session_calls": dict(calls),
        "outside_graphs_s": round(batch_s - in_graphs, 3),
        "note": "outside_graphs_s: pixels, generation's search (numpy), decoding; a role's seconds are "
        "0 with 0 calls when the family keeps its sessions elsewhere than family.sessions",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.family_profile", description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args(argv)
    if not (args.model_dir / "onnx_model.json").is_file():
        parser.error(f"{args.model_dir} is not an exported ONNX model directory (no onnx_model.json)")
    print(json.dumps(profile(args.model_dir, args.images)))


if __name__ == "__main__":
    main()
