"""`make image-test`: build the function image for each runtime (Docker's cache makes an unchanged rebuild
quick), run the image tests (tests/image: the real container under the RIE against moto, the layers, the
pushed manifest) and print one summary. Exits non-zero when a test fails."""
# ruff: noqa: S603  (runs this interpreter's pytest)

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from captioning.component.build_context import MODEL_SOURCE, prepare_build_context
from captioning.contract.constants import DEFAULT_RUNTIME, RUNTIMES
from imagebuild.docker_engine import ensure_engine
from imagebuild.function_image import DEFAULT_TAG, DEMO_MODEL_SOURCE, REPO_ROOT, ImageOptions, build
from ops.arguments import help_description

PACKAGE_CONTEXT_TAG = f"{DEFAULT_TAG.rsplit(':', 1)[0]}:package"
PACKAGE_CONTEXT_LABEL = f"{DEFAULT_RUNTIME}, built from the context the component assembles"


def package_context_options() -> ImageOptions:
    """The default runtime's image built as `pulumi up` builds it: from the context the component assembles
    out of the installed package and a `modelDir` (here the demo model)."""
    context = prepare_build_context(str(REPO_ROOT / DEMO_MODEL_SOURCE))
    return ImageOptions(tag=PACKAGE_CONTEXT_TAG, model_source=MODEL_SOURCE, context=context.path)


def tag_for(runtime: str) -> str:
    """The default runtime's image is captioning-function:local; another runtime's is tagged by its name."""
    return DEFAULT_TAG if runtime == DEFAULT_RUNTIME else f"{DEFAULT_TAG.rsplit(':', 1)[0]}:{runtime}"


def _megabytes(value: Any) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value / 1e6:,.0f} MB" if value >= 10e6 else f"{value / 1e6:.2f} MB"


def summary(report: dict[str, dict[str, Any]], runtimes: dict[str, str], cpu: str) -> str:
    lines = [f"image-test summary ({cpu})"]
    for runtime, tag in runtimes.items():
        entry = report.get(tag, {})
        groups = entry.get("layer_bytes", {})
        init = entry.get("init_duration_ms")
        first = entry.get("first_invocation_s")
        lines.append(
            f"  {tag} (runtime {runtime}): image {_megabytes(entry.get('image_bytes'))}"
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
    parser.add_argument("--no-build", action="store_true", help="test the images as they are")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (e.g. -k manifest)")
    args = parser.parse_args(argv)
    wanted = [runtime.strip() for runtime in args.runtimes.split(",") if runtime.strip()]
    unknown = [runtime for runtime in wanted if runtime not in RUNTIMES]
    if unknown or not wanted:
        print(f"error: --runtimes takes {', '.join(RUNTIMES)}; got {args.runtimes!r}", file=sys.stderr)
        return 2
    builds = {runtime: ImageOptions(tag=tag_for(runtime), runtime=runtime) for runtime in wanted}
    if DEFAULT_RUNTIME in wanted:
        builds[PACKAGE_CONTEXT_LABEL] = package_context_options()
    runtimes = {label: options.tag for label, options in builds.items()}
    ensure_engine()
    with tempfile.TemporaryDirectory(prefix="image-test-") as scratch:
        report_file = Path(scratch) / "report.json"
        report: dict[str, dict[str, Any]] = {}
        for options in builds.values():
            if not args.no_build:
                seconds = build(options)
                report.setdefault(options.tag, {})["build_s"] = round(seconds)
        report_file.write_text(json.dumps(report))
        environment = {
            **os.environ,
            "CAPTIONING_IMAGE_TAGS": ",".join(runtimes.values()),
            "CAPTIONING_IMAGE_REPORT": str(report_file),
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "image",
            "-p",
            "no:cacheprovider",
            "tests/image",
        ]
        result = subprocess.run([*command, *args.pytest_args], cwd=REPO_ROOT, env=environment, check=False)
        report = json.loads(report_file.read_text())
    print(summary(report, runtimes, cpu_model()))
    if result.returncode != 0:
        print("image-test FAILED (see the pytest output above)", file=sys.stderr)
    return result.returncode
