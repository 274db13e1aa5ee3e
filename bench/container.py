"""The function images, measured: sizes, library layers, INIT durations, and per-image times and the
smallest memory that does not run out at Lambda's CPU share (`docker run --cpus C --memory M`).

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU's worth. Each memory
size is run with ``--cpus = memory / 1769`` (capped at the cores this machine has) and ``--memory`` =
``--memory-swap`` = that size; the benchmark's full-size model is mounted read-only (the images
built by `make image` carry whichever model they were built with). Without Docker or the images the
measurements are skipped with a note; nothing else depends on them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess  # noqa: S404  fixed argument lists, no shell
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.coldstart import can_drop_page_cache, drop_page_cache
from captioning.contract.constants import MODEL_DIR_IN_IMAGE
from captioning.contract.environment import Variable
from ops.aws import MOTO_CREDENTIALS, MOTO_REGION

REPO_ROOT = Path(__file__).resolve().parent.parent
MB_PER_FULL_VCPU = 1769
LAMBDA_MEMORY_RANGE_MB = (128, 10240)
DEFAULT_MEMORY_SIZES_MB = (1024, 1536, 1769, 2048, 2560, 3008, 3538)
# `make image` tags (imagebuild): the default runtime's image is :local, the other runtime's by name.
DEFAULT_IMAGES = {"onnx": "captioning-function:local", "torch": "captioning-function:torch"}
INIT_MEMORY_MB = 3538
MODEL_MOUNT = "/opt/bench/model"
INPUTS_MOUNT = "/opt/bench/inputs"
CODE_MOUNT = "/opt/bench/code"
# The RIE writes `INIT REPORT(durationMs: 4066.62)`; Lambda's own log `INIT REPORT Init Duration: 4066.62 ms`.
INIT_REPORT = re.compile(r"INIT REPORT\W*(?:durationMs:|Init Duration:)\s*([0-9.]+)")
# Lambda's file system is read-only but for /tmp; so are the containers here (no .pyc written at init).
READ_ONLY = ["--read-only", "--tmpfs", "/tmp:rw,exec"]  # noqa: S108
PROBE_TIMEOUT_S = 300
"""A probe still running after this is stopped and recorded as timed out: at a memory size just above
what the weights need, the container pages its model files in and out and never finishes usefully."""
# Kept away from the network: no credentials lookup (instance metadata), no AWS endpoint reachable.
OFFLINE_AWS = {
    **MOTO_CREDENTIALS,
    "AWS_REGION": MOTO_REGION,
    "AWS_DEFAULT_REGION": MOTO_REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    Variable.POWERTOOLS_TRACE_DISABLED: "true",
    Variable.POWERTOOLS_METRICS_DISABLED: "true",
}


def memory_sizes(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated Lambda memory sizes in MB, each 128-10240."""
    low, high = LAMBDA_MEMORY_RANGE_MB
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated whole numbers of MB, e.g. 1024,1769,3538; got {text!r}"
        ) from None
    if not sizes or not all(low <= size <= high for size in sizes):
        raise argparse.ArgumentTypeError(f"each size must be {low}-{high} MB (Lambda's range); got {text!r}")
    return sizes


def add_container_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-images",
        action="store_true",
        help="skip the function images (sizes, INIT durations, per-image times at Lambda's CPU share)",
    )
    for runtime, tag in DEFAULT_IMAGES.items():
        parser.add_argument(
            f"--{runtime}-image", default=tag, help=f"the runtime={runtime} function image (default {tag})"
        )
    parser.add_argument(
        "--lambda-memory",
        type=memory_sizes,
        default=DEFAULT_MEMORY_SIZES_MB,
        help="memory sizes (MB) to run the images at, CPU in Lambda's proportion; "
        f"default {','.join(map(str, DEFAULT_MEMORY_SIZES_MB))}",
    )


def cpus_for(memory_mb: int, cores: int | None = None) -> float:
    """Lambda's CPU share for a memory size, capped at the cores this machine has."""
    cores = cores or len(os.sched_getaffinity(0))
    return round(min(memory_mb / MB_PER_FULL_VCPU, cores), 3)


def _docker(*arguments: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    completed = subprocess.run(  # noqa: S603  fixed argument list
        [shutil.which("docker") or "/usr/bin/docker", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and completed.returncode != 0:
        raise RuntimeError(f"docker {' '.join(arguments[:2])} failed: {completed.stderr.strip()[-600:]}")
    return completed


def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers; otherwise why not, in a sentence."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 20 s"
    if info.returncode != 0:
        detail = info.stderr.strip().splitlines()[-1] if info.stderr.strip() else "docker info failed"
        return f"no Docker engine answers ({detail})"
    return None


def image_layers(tag: str) -> list[dict]:
    """The image's layers, oldest first: what created each and its size in bytes."""
    history = _docker("history", "--human=false", "--no-trunc", "--format", "{{json .}}", tag)
    layers = [json.loads(line) for line in history.stdout.splitlines() if line.strip()]
    return [{"created_by": layer["CreatedBy"], "bytes": int(layer["Size"])} for layer in reversed(layers)]


def is_library_layer(created_by: str) -> bool:
    """A layer that installed captioning/function/requirements-<runtime>.txt (or copied the stage that
    did)."""
    installs = "pip" in created_by and "requirements" in created_by and "install" in created_by
    return installs or "COPY --from=libraries" in created_by


def is_model_layer(created_by: str) -> bool:
    return MODEL_DIR_IN_IMAGE in created_by and "COPY" in created_by.upper()


def layer_group_bytes(tag: str, layers: list[dict]) -> dict[str, int]:
    """Bytes of the base, model, libraries and code layers: imagebuild's own reading of the image's history
    where it is there (it knows captioning/function/Dockerfile's stages), else by what created each layer."""
    try:
        from imagebuild.function_image import layer_groups
    except ImportError:
        layer_groups = None
    if layer_groups is not None:
        try:
            return dict(layer_groups(tag))
        except (ValueError, RuntimeError):
            pass
    return {
        "libraries": sum(layer["bytes"] for layer in layers if is_library_layer(layer["created_by"])),
        "model": sum(layer["bytes"] for layer in layers if is_model_layer(layer["created_by"])),
    }


def image_facts(tag: str) -> dict:
    inspected = json.loads(_docker("image", "inspect", tag).stdout)[0]
    layers = image_layers(tag)
    groups = layer_group_bytes(tag, layers)
    return {
        "tag": tag,
        "id": inspected["Id"],
        "bytes": int(inspected["Size"]),
        "library_bytes": groups.get("libraries"),
        "model_bytes": groups.get("model"),
        "layer_groups": groups,
        "layers": layers,
        "env": dict(item.split("=", 1) for item in inspected["Config"].get("Env") or [] if "=" in item),
    }


def _mounts(model_dir: Path, inputs_dir: Path) -> list[str]:
    return [
        "-v",
        f"{model_dir}:{MODEL_MOUNT}:ro",
        "-v",
        f"{inputs_dir}:{INPUTS_MOUNT}:ro",
        "-v",
        f"{REPO_ROOT / 'bench'}:{CODE_MOUNT}/bench:ro",
    ]


def _empty_page_cache() -> None:
    if can_drop_page_cache():
        drop_page_cache()


def _limits(memory_mb: int) -> list[str]:
    return ["--cpus", str(cpus_for(memory_mb)), "--memory", f"{memory_mb}m", "--memory-swap", f"{memory_mb}m"]


def run_probe(image: dict, model_dir: Path, precision: str, memory_mb: int, inputs) -> dict:
    """One container at ``memory_mb`` (and its CPU share) captioning the inputs; OOM-killed or not."""
    task_root = image["env"].get("LAMBDA_TASK_ROOT", "/var/task")
    name = f"bench-probe-{os.getpid()}-{time.monotonic_ns()}"
    inputs_dir = inputs.large_jpeg.parent
    command = [
        "run",
        "--name",
        name,
        "--network",
        "none",
        *READ_ONLY,
        *_limits(memory_mb),
        *_mounts(model_dir, inputs_dir),
        "-e",
        f"PYTHONPATH={task_root}:{CODE_MOUNT}",
        "--entrypoint",
        "python3",
        image["tag"],
        f"{CODE_MOUNT}/bench/container_probe.py",
        "--model-dir",
        MODEL_MOUNT,
        "--precision",
        precision,
        "--large",
        f"{INPUTS_MOUNT}/{inputs.large_jpeg.name}",
        "--batch",
        *(f"{INPUTS_MOUNT}/{path.name}" for path in inputs.batch_jpegs),
    ]
    _empty_page_cache()
    try:
        completed = _docker(*command, timeout=PROBE_TIMEOUT_S, check=False)
        state = json.loads(_docker("inspect", "--format", "{{json .State}}", name).stdout)
    except subprocess.TimeoutExpired:
        completed, state = None, {"OOMKilled": False}
    finally:
        _docker("rm", "-f", name, check=False)
    result = {"memory_mb": memory_mb, "cpus": cpus_for(memory_mb), "oom_killed": bool(state["OOMKilled"])}
    if completed is None:
        result["timed_out"] = True
        result["error"] = f"still running after {PROBE_TIMEOUT_S} s (stopped): memory too tight to work in"
    elif completed.returncode == 0:
        result.update(json.loads(completed.stdout.strip().splitlines()[-1]))
        result["seconds_per_image_batch10"] = result["batch_s"] / result["batch_size"]
    elif not result["oom_killed"]:
        result["error"] = f"exit {completed.returncode}: {completed.stderr.strip()[-800:]}"
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure_init(image: dict, model_dir: Path, runtime: str, precision: str, memory_mb: int) -> dict:
    """INIT duration under the Runtime Interface Emulator (its `INIT REPORT` line), page cache dropped.

    The function's own init runs: settings, boto3 clients, `Captioner.load` of the mounted model. The
    invocation that triggers it gets an empty event (rejected: nothing reaches AWS)."""
    port = _free_port()
    name = f"bench-init-{os.getpid()}-{time.monotonic_ns()}"
    environment = {
        **OFFLINE_AWS,
        Variable.TABLE_NAME: "bench",
        Variable.MODEL_DIR: MODEL_MOUNT,
        Variable.RUNTIME: runtime,
        Variable.PRECISION: precision,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
    }
    command = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", *READ_ONLY, *_limits(memory_mb)]
    command += ["-v", f"{model_dir}:{MODEL_MOUNT}:ro"]
    for key, value in environment.items():
        command += ["-e", f"{key}={value}"]
    _empty_page_cache()
    _docker(*command, image["tag"])
    try:
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(  # noqa: S310  the emulator on loopback
                    urllib.request.Request(url, data=b"{}", method="POST"), timeout=300
                ) as response:
                    response.read()
                break
            except (urllib.error.URLError, ConnectionError) as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the emulator did not answer: {error}") from error
                time.sleep(0.2)
        time.sleep(0.5)
        logs = _docker("logs", name).stdout + _docker("logs", name).stderr
    finally:
        state = json.loads(
            _docker("inspect", "--format", "{{json .State}}", name, check=False).stdout or "{}"
        )
        _docker("rm", "-f", name, check=False)
    found = INIT_REPORT.findall(logs)
    return {
        "memory_mb": memory_mb,
        "cpus": cpus_for(memory_mb),
        "init_s": float(found[0]) / 1000 if found else None,
        "oom_killed": bool(state.get("OOMKilled")),
        "note": None if found else f"no INIT REPORT line in the logs: {logs.strip()[-600:]}",
    }


def smallest_memory_without_oom(runs: list[dict]) -> int | None:
    """The smallest measured size at which the probe finished, when every larger size finished too."""
    ok = [run["memory_mb"] for run in runs if "batch_s" in run]
    failed = [run["memory_mb"] for run in runs if "batch_s" not in run]
    candidates = [size for size in ok if all(size > bad for bad in failed)]
    return min(candidates) if candidates else None


def _configurations(models, onnx, images: dict[str, dict]) -> dict[str, tuple[dict, Path, str, str]]:
    """name -> (image, model dir, runtime, precision) for every runtime/precision that can be run."""
    configurations = {}
    if "torch" in images:
        configurations["torch"] = (images["torch"], models.fp32_dir, "torch", "fp32")
        configurations["torch_int8"] = (images["torch"], models.fp32_dir, "torch", "int8")
    if "onnx" in images:
        for precision, model_dir in onnx.dirs.items():
            name = "onnx" if precision == "fp32" else f"onnx_{precision}"
            configurations[name] = (images["onnx"], model_dir, "onnx", precision)
    return configurations


def measure_images(args, models, onnx, inputs, log=print) -> dict:
    """Everything measured with Docker, or ``{"available": False, "note": ...}`` saying why not."""
    if args.no_images:
        return {"available": False, "note": "skipped (--no-images)"}
    reason = docker_unavailable_reason()
    if reason is not None:
        note = f"{reason}: image sizes, INIT durations and Lambda sizes not measured"
        log(f"[yellow]{note}[/yellow]")
        return {"available": False, "note": note}
    images, notes = {}, {}
    for runtime in DEFAULT_IMAGES:
        tag = getattr(args, f"{runtime}_image")
        if _docker("image", "inspect", tag, check=False).returncode != 0:
            notes[runtime] = (
                f"image {tag} not found "
                f"(build it: make image RUNTIME={runtime} TAG={tag}; or make image-test)"
            )
            log(f"[yellow]{notes[runtime]}[/yellow]")
            continue
        facts = image_facts(tag)
        built_for = facts["env"].get(Variable.RUNTIME)
        if built_for not in (None, runtime):
            notes[runtime] = f"image {tag} was built for runtime {built_for}, not {runtime}: not measured"
            log(f"[yellow]{notes[runtime]}[/yellow]")
            continue
        images[runtime] = facts
    result: dict = {
        "available": bool(images),
        "notes": notes,
        "images": {
            runtime: {k: v for k, v in facts.items() if k != "env"} for runtime, facts in images.items()
        },
        "library_bytes": {runtime: facts["library_bytes"] for runtime, facts in images.items()},
        "cache_method": "page cache dropped before each container"
        if can_drop_page_cache()
        else "page cache not dropped (drop_caches not writable)",
        "init": {},
        "lambda_sizes": {},
        "smallest_memory_mb": {},
    }
    for name, (image, model_dir, runtime, precision) in _configurations(models, onnx, images).items():
        log(
            f"image {image['tag']}, {name}: INIT at {INIT_MEMORY_MB} MB, then {len(args.lambda_memory)} sizes"
        )
        try:
            result["init"][name] = measure_init(image, model_dir, runtime, precision, INIT_MEMORY_MB)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            result["init"][name] = {"memory_mb": INIT_MEMORY_MB, "init_s": None, "note": str(error)}
        runs = [run_probe(image, model_dir, precision, size, inputs) for size in args.lambda_memory]
        result["lambda_sizes"][name] = runs
        result["smallest_memory_mb"][name] = smallest_memory_without_oom(runs)
        timed = [run for run in runs if "batch_s" in run]
        log(
            f"  {name}: INIT {result['init'][name].get('init_s')} s; smallest memory "
            f"{result['smallest_memory_mb'][name]} MB; "
            + ", ".join(
                f"{run['memory_mb']} MB {run['seconds_per_image_batch10']:.2f} s/img" for run in timed
            )
        )
    return result


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.container [results.json]`: measure the images alone and put them into a run's
    results (when the run itself had no Docker); the summary, table and chart are rebuilt."""
    import time as clock
    from types import SimpleNamespace

    from bench import DEFAULT_CACHE
    from bench.inputs import ensure_inputs
    from bench.machine import load_average
    from bench.model import BenchModels
    from bench.onnx_models import ONNX_PRECISIONS, OnnxModels
    from bench.report import build_summary, draw_chart, read_results, results_argument_parser

    parser = results_argument_parser(
        "python -m bench.container", "Measure the function images and add them to a benchmark run's results."
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    add_container_arguments(parser)
    args = parser.parse_args(argv)
    summary = read_results(parser, args.results)
    models_dir = args.cache_dir.expanduser() / "models"
    models = BenchModels(models_dir / "baseline", models_dir / "fp32", models_dir / "fp16")
    onnx = OnnxModels(
        dirs={p: models_dir / f"onnx-{p}" for p in ONNX_PRECISIONS if (models_dir / f"onnx-{p}").is_dir()}
    )
    started, load_at_start = clock.strftime("%Y-%m-%d %H:%M UTC", clock.gmtime()), load_average()
    images = measure_images(
        SimpleNamespace(**{**vars(args), "no_images": False}),
        models,
        onnx,
        ensure_inputs(args.cache_dir.expanduser()),
    )
    images["measured_separately"] = {
        "started": started,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "note": "measured by python -m bench.container after the run (the run had no Docker engine)",
    }
    raw = summary["raw"]
    raw["images"] = images
    summary = build_summary(raw)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    draw_chart(summary, args.results.with_name("results.png"))
    print(json.dumps({key: summary[key] for key in ("image_libraries_bytes_ratio",)}))


if __name__ == "__main__":
    main()
