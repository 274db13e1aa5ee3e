"""`make image-test`: build the function image for each runtime on x86_64 and the default runtime's image for
arm64 (under QEMU user emulation; Docker's cache makes an unchanged rebuild quick), run the image tests
(tests/image: the real container under the RIE against moto, the layers, the pushed manifest, the arm64
image's captions against the x86_64 image's), and an onnx image of each non-default family in --families
(a tiny random model, built here, exported and verified in the image's model stage; its captions against
transformers' generate on the same model: tests/image/test_family_image.py), and print one summary. Exits
non-zero when a test fails."""
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
from captioning.function.onnx_family import FAMILY_MODULES
from imagebuild.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE, host
from imagebuild.docker_engine import ensure_engine
from imagebuild.function_image import DEFAULT_TAG, DEMO_MODEL_SOURCE, REPO_ROOT, ImageOptions, build
from imagebuild.wheelhouse import FOREIGN_RUNTIMES
from ops.arguments import help_description

PACKAGE_CONTEXT_TAG = f"{DEFAULT_TAG.rsplit(':', 1)[0]}:package"
FAMILY_IMAGE_RUNTIME = "onnx"
DEFAULT_FAMILIES = ("blip",)
"""Non-default families whose tiny model gets an image of its own (each costs an export in the model stage;
docs/container-image.md has the times)."""
FAMILY_IMAGES_VARIABLE = "CAPTIONING_FAMILY_IMAGES"
"""JSON the family image tests read: image tag -> {"family", "source": the tiny model directory}."""
PACKAGE_CONTEXT_LABEL = f"{DEFAULT_RUNTIME}, built from the context the component assembles"


def package_context_options() -> ImageOptions:
    """The default runtime's image built as `pulumi up` builds it: from the context the component assembles
    out of the installed package and a `modelDir` (here the demo model)."""
    context = prepare_build_context(str(REPO_ROOT / DEMO_MODEL_SOURCE))
    return ImageOptions(tag=PACKAGE_CONTEXT_TAG, model_source=MODEL_SOURCE, context=context.path)


def family_image_tag(family: str) -> str:
    return f"{DEFAULT_TAG.rsplit(':', 1)[0]}:{FAMILY_IMAGE_RUNTIME}-{family}"


def family_image_options(family: str, scratch: Path) -> tuple[ImageOptions, Path]:
    """The image of `family`'s tiny random model (tests/tiny_families.py, the same bytes on every run, so
    Docker's cache keeps an unchanged image), built as `pulumi up` builds one from a `modelDir`; and the
    model directory in the assembled context (what the tests compare the image's captions against)."""
    from tests.tiny_families import BUILDERS  # torch + transformers: only when a family image is wanted

    model_dir = BUILDERS[family](scratch / f"tiny-{family}")
    context = prepare_build_context(str(model_dir))
    options = ImageOptions(
        tag=family_image_tag(family),
        model_id=f"tiny-{family}",
        model_source=MODEL_SOURCE,
        runtime=FAMILY_IMAGE_RUNTIME,
        context=context.path,
    )
    return options, context.path / MODEL_SOURCE


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


def wanted_families(value: str, runtimes: list[str], architectures: list[str]) -> list[str] | None:
    """The families of --families (None, with an error printed, for one that has no tiny model or no
    ONNX adapter); none unless the onnx runtime's x86_64 images are built too."""
    families = [name.strip() for name in value.split(",") if name.strip()]
    if families:
        from tests.tiny_families import BUILDERS

        choices = [name for name in BUILDERS if name in FAMILY_MODULES]
        if any(name not in choices for name in families):
            print(f"error: --families takes {', '.join(choices)}; got {value!r}", file=sys.stderr)
            return None
    if FAMILY_IMAGE_RUNTIME not in runtimes or DEFAULT_ARCHITECTURE not in architectures:
        return []
    return families


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
    parser.add_argument(
        "--families",
        default=os.environ.get("IMAGE_TEST_FAMILIES", ",".join(DEFAULT_FAMILIES)),
        help=f"comma-separated non-default families to build a tiny model's {FAMILY_IMAGE_RUNTIME} image"
        f" of (x86_64; default {','.join(DEFAULT_FAMILIES)}; empty: none)",
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
    families = wanted_families(args.families, wanted, architectures)
    if families is None:
        return 2
    if not builds:
        print(
            f"error: nothing to build: {architectures} with runtimes {wanted} (another architecture than"
            f" {DEFAULT_ARCHITECTURE} builds only {', '.join(FOREIGN_RUNTIMES)})",
            file=sys.stderr,
        )
        return 2
    ensure_engine()
    with tempfile.TemporaryDirectory(prefix="image-test-") as scratch:
        family_images = {family: family_image_options(family, Path(scratch)) for family in families}
        everything = {
            **builds,
            **{
                f"{FAMILY_IMAGE_RUNTIME}, {family} (tiny)": options
                for family, (options, _) in family_images.items()
            },
        }
        runtimes = {label: options.tag for label, options in everything.items()}
        report_file = Path(scratch) / "report.json"
        report: dict[str, dict[str, Any]] = {}
        for options in everything.values():
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
                FAMILY_IMAGES_VARIABLE: json.dumps(
                    {
                        options.tag: {"family": family, "source": str(source)}
                        for family, (options, source) in family_images.items()
                    }
                ),
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
