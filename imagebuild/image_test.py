"""`make image-test`: build the function image for each runtime on x86_64 and the default runtime's image for
arm64 (under QEMU user emulation; Docker's cache makes an unchanged rebuild quick), run the image tests
(tests/image: the real container under the RIE against moto, the layers, the pushed manifest, the arm64
image's captions against the x86_64 image's) and print one summary. Exits non-zero when a test fails."""
# ruff: noqa: S603  (runs this interpreter's pytest)

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from captioning.component.build_context import MODEL_SOURCE, prepare_build_context
from captioning.contract.constants import DEFAULT_RUNTIME, RUNTIMES
from imagebuild.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE, host
from imagebuild.docker_engine import ensure_engine
from imagebuild.function_image import DEFAULT_TAG, DEMO_MODEL_SOURCE, REPO_ROOT, ImageOptions, build
from imagebuild.wheelhouse import FOREIGN_RUNTIMES
from ops.arguments import help_description

PACKAGE_CONTEXT_TAG = f"{DEFAULT_TAG.rsplit(':', 1)[0]}:package"
PACKAGE_CONTEXT_LABEL = f"{DEFAULT_RUNTIME}, built from the context the component assembles"


def package_context_options() -> ImageOptions:
    """The default runtime's image built as `pulumi up` builds it: from the context the component assembles
    out of the installed package and a `modelDir` (here the demo model)."""
    context = prepare_build_context(str(REPO_ROOT / DEMO_MODEL_SOURCE))
    return ImageOptions(tag=PACKAGE_CONTEXT_TAG, model_source=MODEL_SOURCE, context=context.path)


FOREIGN_IMAGE_TESTS = (
    "tests/image/test_function_in_container.py",
    "tests/image/test_built_image.py",
    "tests/image/test_manifest.py",
    "tests/image/test_arm64_image.py",
    "-k",
    "not a_base_without_lambda_task_root",
)
"""What runs on another architecture's image: the same events and captions, its layers and contents, its
manifest, and its captions against the x86_64 image's. Not the local tool's runs through the image
(tests/image/test_local_image.py: the tool, not the architecture) nor the Dockerfile's own refusal of a base
without LAMBDA_TASK_ROOT (a check of the Dockerfile, shown on the x86_64 image)."""


def pytest_runs(builds: dict[str, ImageOptions]) -> list[tuple[list[str], list[str]]]:
    """(image tags, pytest selection) per run: this machine's architecture's images get every image test;
    the others, FOREIGN_IMAGE_TESTS."""
    here = host().name
    native = [options.tag for options in builds.values() if options.architecture == here]
    foreign = [options.tag for options in builds.values() if options.architecture != here]
    runs = [(native, ["tests/image", "--ignore", "tests/image/test_arm64_image.py"])] if native else []
    return runs + ([(foreign, list(FOREIGN_IMAGE_TESTS))] if foreign else [])


def tag_for(runtime: str, architecture: str = DEFAULT_ARCHITECTURE) -> str:
    """The default runtime's x86_64 image is captioning-function:local; another runtime's is tagged by its
    name, another architecture's by its own (captioning-function:arm64, the default runtime's)."""
    name = DEFAULT_TAG.rsplit(":", 1)[0]
    if architecture != DEFAULT_ARCHITECTURE:
        return f"{name}:{architecture}" if runtime == DEFAULT_RUNTIME else f"{name}:{runtime}-{architecture}"
    return DEFAULT_TAG if runtime == DEFAULT_RUNTIME else f"{name}:{runtime}"


def _megabytes(value: Any) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value / 1e6:,.0f} MB" if value >= 10e6 else f"{value / 1e6:.2f} MB"


def _label(label: str, architecture: str) -> str:
    return label if architecture in label else f"{label}, {architecture}"


def summary(report: dict[str, dict[str, Any]], runtimes: dict[str, str], cpu: str) -> str:
    lines = [f"image-test summary ({cpu})"]
    for runtime, tag in runtimes.items():
        entry = report.get(tag, {})
        groups = entry.get("layer_bytes", {})
        init = entry.get("init_duration_ms")
        first = entry.get("first_invocation_s")
        lines.append(
            f"  {tag} ({_label(runtime, entry.get('architecture', DEFAULT_ARCHITECTURE))}):"
            f" image {_megabytes(entry.get('image_bytes'))}"
            f" | base {_megabytes(groups.get('base'))}, model {_megabytes(groups.get('model'))},"
            f" libraries {_megabytes(groups.get('libraries'))}, code {_megabytes(groups.get('code'))}"
            f" | build {entry.get('build_s', 'n/a')} s"
            f" | INIT {f'{init:,.0f} ms' if isinstance(init, int | float) else 'n/a'}"
            f" | first invocation {f'{first:.2f} s' if isinstance(first, int | float) else 'n/a'}"
            f" ({entry.get('first_invocation_images', '?')} images)"
            f" | manifest {entry.get('manifest_media_type', 'n/a')}"
        )
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f", {os.cpu_count()} CPUs"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imagebuild image-test", description=help_description(__doc__)
    )
    parser.add_argument(
        "--runtimes",
        default=os.environ.get("IMAGE_TEST_RUNTIMES", ",".join(RUNTIMES)),
        help=f"comma-separated, of {', '.join(RUNTIMES)} (default: all)",
    )
    parser.add_argument(
        "--architectures",
        default=os.environ.get("IMAGE_TEST_ARCHITECTURES", ",".join(ARCHITECTURES)),
        help=f"comma-separated, of {', '.join(ARCHITECTURES)} (default: all; arm64 builds and runs the"
        f" {', '.join(FOREIGN_RUNTIMES)} runtime under QEMU, and its captions are compared with x86_64's)",
    )
    parser.add_argument("--no-build", action="store_true", help="test the images as they are")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k manifest)")
    args = parser.parse_args(argv)
    wanted = [runtime.strip() for runtime in args.runtimes.split(",") if runtime.strip()]
    unknown = [runtime for runtime in wanted if runtime not in RUNTIMES]
    if unknown or not wanted:
        print(f"error: --runtimes takes {', '.join(RUNTIMES)}; got {args.runtimes!r}", file=sys.stderr)
        return 2
    architectures = [name.strip() for name in args.architectures.split(",") if name.strip()]
    if not architectures or any(name not in ARCHITECTURES for name in architectures):
        print(
            f"error: --architectures takes {', '.join(ARCHITECTURES)}; got {args.architectures!r}",
            file=sys.stderr,
        )
        return 2
    builds: dict[str, ImageOptions] = {}
    if DEFAULT_ARCHITECTURE in architectures:
        builds.update({runtime: ImageOptions(tag=tag_for(runtime), runtime=runtime) for runtime in wanted})
        if DEFAULT_RUNTIME in wanted:
            builds[PACKAGE_CONTEXT_LABEL] = package_context_options()
    for architecture in architectures:
        if architecture == DEFAULT_ARCHITECTURE:
            continue
        for runtime in wanted:
            if runtime in FOREIGN_RUNTIMES:
                builds[f"{runtime}, {architecture}"] = ImageOptions(
                    tag=tag_for(runtime, architecture), runtime=runtime, architecture=architecture
                )
    if not builds:
        print(
            f"error: nothing to build: {architectures} with runtimes {wanted} (another architecture than"
            f" {DEFAULT_ARCHITECTURE} builds only {', '.join(FOREIGN_RUNTIMES)})",
            file=sys.stderr,
        )
        return 2
    runtimes = {label: options.tag for label, options in builds.items()}
    ensure_engine()
    with tempfile.TemporaryDirectory(prefix="image-test-") as scratch:
        report_file = Path(scratch) / "report.json"
        report: dict[str, dict[str, Any]] = {}
        for options in builds.values():
            entry = report.setdefault(options.tag, {})
            entry["architecture"] = options.architecture
            if not args.no_build:
                entry["build_s"] = round(build(options))
        report_file.write_text(json.dumps(report))
        returncodes = []
        for tags, selection in pytest_runs(builds):
            environment = {
                **os.environ,
                "CAPTIONING_IMAGE_TAGS": ",".join(tags),
                "CAPTIONING_IMAGE_REPORT": str(report_file),
            }
            command = [sys.executable, "-m", "pytest", "-q", "-m", "image", "-p", "no:cacheprovider"]
            command += [*selection, *args.pytest_args]
            started = time.monotonic()
            returncodes.append(
                subprocess.run(command, cwd=REPO_ROOT, env=environment, check=False).returncode
            )
            print(f"tests of {', '.join(tags)}: {time.monotonic() - started:.0f} s", file=sys.stderr)
        report = json.loads(report_file.read_text())
    result_code = next((code for code in returncodes if code != 0), 0)
    print(summary(report, runtimes, cpu_model()))
    if result_code != 0:
        print("image-test FAILED (see the pytest output above)", file=sys.stderr)
    return result_code
