"""One ONNX load, run as a fresh process: open a prepared model's sessions one way, caption, print JSON.

The way (``--variant``, a JSON object of bench/onnx_load.py's Variant) says which graph files, which
optimisation level at load, pre-packing, threads, and whether the sessions are created in parallel.
Reported: the seconds and CPU seconds of the load, the first caption (cold) and a second one (warm),
bytes read from disk (/proc/self/io) and the process's peak RSS (VmHWM) after the load and after the
captions, and the token ids (the parent compares them across ways).
"""

from __future__ import annotations

import time

CHILD_STARTED_AT = time.time()

import argparse  # noqa: E402  the clock above must start before any import
import json  # noqa: E402
import resource  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.coldstart_child import read_bytes_so_far  # noqa: E402
from bench.memory import peak_rss_bytes  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_sessions(model_dir: Path, graphs: dict[str, str], variant: dict, num_threads: int) -> dict:
    import onnxruntime

    from captioning.function import onnx_sessions

    files = onnx_sessions.graph_files(model_dir, graphs)
    plans = {}
    for role, file in files.items():
        optimised = file.optimised_at_build and variant["use_index"]
        options = onnx_sessions.session_options(num_threads, optimised_at_build=optimised)
        if variant.get("level"):
            options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, variant["level"])
        path = file.path
        if variant.get("ort_format"):
            path = path.with_name(path.name + ".ort")
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
            for key in (
                "session.use_memory_mapped_ort_model",
                "session.use_ort_model_bytes_directly",
                "session.use_ort_model_bytes_for_initializers",
            ):
                options.add_session_config_entry(key, "1")
        if not variant["prepacking"]:
            options.add_session_config_entry("session.disable_prepacking", "1")
        if variant.get("parallel_prepacking"):
            options.add_session_config_entry("session.prepack.enable_parallel", "1")
        plans[role] = (path, options)
    return onnx_sessions.create_sessions(plans, parallel=variant["parallel"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--variant", type=json.loads, required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--spawned-at", type=float, required=True)
    args = parser.parse_args(argv)
    variant = args.variant

    from tokenizers import Tokenizer

    from captioning.contract.model_files import ONNX_TOKENIZER
    from captioning.function.cpus import available_cpus
    from captioning.function.generation import read_generation_config
    from captioning.function.images import load_image
    from captioning.function.onnx_captioner import OnnxCaptioner, read_manifest
    from captioning.function.onnx_family import runtime_class

    imported_at, cpu_at_import = time.time(), cpu_seconds()
    manifest = read_manifest(args.model_dir)
    family_class = runtime_class(manifest["family"])
    graphs = {role: manifest["graphs"][role] for role in family_class.graph_roles}
    threads = variant.get("threads") or available_cpus()
    sessions = open_sessions(args.model_dir, graphs, variant, threads)
    captioner = OnnxCaptioner(
        family_class(manifest, sessions),
        Tokenizer.from_file(str(args.model_dir / ONNX_TOKENIZER)),
        manifest,
        read_generation_config(args.model_dir),
        model_id=args.model_dir.name,
        num_beams=None,
        max_length=None,
    )
    loaded_at, cpu_at_load = time.time(), cpu_seconds()
    load_read_bytes, load_peak_rss = read_bytes_so_far(), peak_rss_bytes()
    image = load_image(args.image.read_bytes())
    token_ids = captioner.token_ids([image])
    captioned_at, cpu_at_caption = time.time(), cpu_seconds()
    first_read_bytes = read_bytes_so_far()
    warm_started = time.perf_counter()
    again = captioner.token_ids([image])
    warm_s = time.perf_counter() - warm_started
    print(
        json.dumps(
            {
                "interpreter_start_s": CHILD_STARTED_AT - args.spawned_at,
                "import_s": imported_at - args.spawned_at,
                "load_s": loaded_at - imported_at,
                "load_cpu_s": cpu_at_load - cpu_at_import,
                "first_caption_s": captioned_at - loaded_at,
                "first_caption_cpu_s": cpu_at_caption - cpu_at_load,
                "total_s": captioned_at - args.spawned_at,
                "warm_caption_s": warm_s,
                "load_read_bytes": load_read_bytes,
                "read_bytes": first_read_bytes,
                "load_peak_rss_bytes": load_peak_rss,
                "peak_rss_bytes": peak_rss_bytes(),
                "optimised_at_build": sorted(
                    role
                    for role, session in sessions.items()
                    if session.get_session_options().graph_optimization_level
                    == session.get_session_options().graph_optimization_level.ORT_DISABLE_ALL
                ),
                "token_ids": token_ids,
                "warm_equal": again == token_ids,
                "caption": captioner.captions(token_ids)[0],
            }
        )
    )


if __name__ == "__main__":
    main()
