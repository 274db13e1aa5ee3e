"""`make image`: build captioning/function/Dockerfile into a tag, offline, on AWS's base or the stand-in, for
x86_64 or arm64 (`ARCH=arm64`: under QEMU user emulation, with BuildKit, one platform); and read the built
image's layer groups (model / libraries / code) back from `docker history`."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from captioning.contract.build_args import DOCKERFILE, dockerfile_build_args
from captioning.contract.constants import (
    DEFAULT_MODEL_ID,
    DEFAULT_PRECISION,
    DEFAULT_RUNTIME,
    MODEL_DIR_IN_IMAGE,
    RUNTIMES,
)
from captioning.contract.model_files import model_directory_problem
from captioning.contract.runtimes import precision_problem
from imagebuild import base_image, wheelhouse
from imagebuild.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE, architecture, host
from imagebuild.docker_engine import docker, ensure_engine
from imagebuild.emulation import ensure_emulation
from ops.arguments import help_description

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAG = "captioning-function:local"
DEMO_MODEL_SOURCE = "models/demo-shapes"
HUB_PLACEHOLDER = "captioning/preparation/hub_model"
"""What the Dockerfile's model stage copies when no MODEL_SOURCE is given (COPY needs a source); unused."""
BUILDERS = ("classic", "buildkit")


@dataclass(frozen=True)
class ImageOptions:
    tag: str = DEFAULT_TAG
    model_id: str = DEFAULT_MODEL_ID
    model_source: str | None = DEMO_MODEL_SOURCE
    """A model directory relative to the context, or None to download model_id."""
    runtime: str = DEFAULT_RUNTIME
    precision: str = DEFAULT_PRECISION
    half_precision_weights: bool = False
    base_image: str | None = None
    builder: str = "classic"
    no_cache: bool = False
    context: Path = REPO_ROOT
    """The build context: the repository, or one the component assembled (model_source relative to it)."""
    architecture: str = DEFAULT_ARCHITECTURE
    """Lambda's name for the image's instruction set: x86_64 or arm64."""

    def problems(self) -> list[str]:
        found = []
        if self.architecture not in ARCHITECTURES:
            found.append(f"ARCH must be one of {', '.join(ARCHITECTURES)}; got {self.architecture!r}")
        elif (
            architecture(self.architecture) != host()
            and self.runtime in RUNTIMES
            and self.runtime not in wheelhouse.FOREIGN_RUNTIMES
        ):
            offline = ", ".join(wheelhouse.FOREIGN_RUNTIMES)
            found.append(
                f"RUNTIME={self.runtime} with ARCH={self.architecture} is not built here: that image's"
                f" libraries would need {self.runtime}'s {self.architecture} wheels (for torch, PyPI's"
                f" aarch64 CPU wheel) installed under emulation, and the offline {self.architecture}"
                f" wheelhouse holds only the {offline} runtime's requirements; build RUNTIME={offline}"
                f" (the default), or build on a {self.architecture} machine"
            )
        if self.runtime not in RUNTIMES:
            found.append(f"RUNTIME must be one of {', '.join(RUNTIMES)}; got {self.runtime!r}")
        elif problem := precision_problem(
            self.runtime, self.precision, runtime_name="RUNTIME", precision_name="PRECISION"
        ):
            found.append(problem)
        if self.builder not in BUILDERS:
            found.append(f"BUILDER must be one of {', '.join(BUILDERS)}; got {self.builder!r}")
        if self.model_source is not None:
            problem = model_directory_problem(self.context / self.model_source)
            if problem is not None:
                found.append(f"MODEL_SOURCE {self.model_source!r} (under {self.context}): {problem}")
        return found


def build_arguments(options: ImageOptions, *, base: str, index_url: str) -> dict[str, str]:
    """captioning/function/Dockerfile's build args for these options: the model's (as the component
    passes them), then the base image and the package indexes of this offline build."""
    return {
        **dockerfile_build_args(
            model_id=options.model_id,
            model_source=options.model_source,
            runtime=options.runtime,
            precision=options.precision,
            half_precision_weights=options.half_precision_weights,
        ),
        "BASE_IMAGE": base,
        "PIP_INDEX_URL": index_url,
        "TORCH_INDEX_URL": index_url,
    }


def build(options: ImageOptions) -> float:
    """Build the image; returns the seconds it took."""
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    ensure_engine()
    started = time.monotonic()
    target, native = architecture(options.architecture), host()
    foreign = target != native
    if foreign:
        print(ensure_emulation(target), file=sys.stderr)
    aws_base = options.base_image is None and base_image.aws_base_available()
    base = options.base_image or (base_image.AWS_BASE_IMAGE if aws_base else None)
    python_version = base_image.python_version(base) if base else "3.11"
    packages = [wheelhouse.download(python_version, native)]
    if foreign:
        packages.append(wheelhouse.download(python_version, target))
    with wheelhouse.serve(*packages) as index_url:
        model_stage_base = base or base_image.build_stand_in(index_url, native)
        if base is None:
            base = base_image.build_stand_in(index_url, target)
        build_args = build_arguments(options, base=base, index_url=index_url)
        command = ["build", "--network", "host", "-f", DOCKERFILE, "-t", options.tag]
        if foreign:
            # The model stage runs here, natively, on this machine's base; the other stages under emulation.
            build_args["MODEL_STAGE_BASE_IMAGE"] = model_stage_base
            build_args["MODEL_STAGE_PLATFORM"] = native.platform
            command += ["--platform", target.platform]
        command += ["--no-cache"] if options.no_cache else []
        for name, value in build_args.items():
            command += ["--build-arg", f"{name}={value}"]
        builder = "buildkit" if foreign else options.builder
        environment = {**os.environ, "DOCKER_BUILDKIT": "1" if builder == "buildkit" else "0"}
        print(
            f"building {options.tag} ({target.platform}, base {base}, runtime {options.runtime},"
            f" {builder} builder) ...",
            file=sys.stderr,
        )
        docker(*command, ".", capture=False, cwd=options.context, env=environment)
    return time.monotonic() - started


# --- what is in the built image -------------------------------------------------------------------------
GROUPS = ("model", "libraries", "code")
# The classic builder writes `COPY dir:<hash> in DEST`, BuildKit `COPY SRC DEST # buildkit`.
_GROUP_PATTERNS = {
    "model": re.compile(rf"COPY .*{re.escape(MODEL_DIR_IN_IMAGE)}/?$"),
    "libraries": re.compile(r"COPY .*/var/task/?$"),
    "code": re.compile(r"COPY .*/var/task/captioning(/\w+)?/?$|compileall .*/captioning"),
}


@dataclass
class Layer:
    created_by: str
    size: int


def history(tag: str) -> list[Layer]:
    """The image's layers, oldest first, as `docker history` shows them (including the base's)."""
    result = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}\t{{.Size}}", "--human=false", tag)
    layers = []
    for line in result.stdout.splitlines():
        created_by, _, size = line.rpartition("\t")
        layers.append(Layer(created_by, int(size)))
    return list(reversed(layers))


def layer_groups(tag: str, base: str | None = None) -> dict[str, int]:
    """Bytes of the final stage's layer groups: model, libraries, code (in that order), and the base."""
    layers = history(tag)
    base_layers = len(history(base)) if base else _base_layer_count(layers)
    groups = {"base": sum(layer.size for layer in layers[:base_layers])}
    groups.update(dict.fromkeys(GROUPS, 0))
    current = None
    for layer in layers[base_layers:]:
        step = layer.created_by.removesuffix("# buildkit").strip()
        for group in GROUPS[GROUPS.index(current) if current else 0 :]:
            if _GROUP_PATTERNS[group].search(step):
                current = group
                break
        if current:
            groups[current] += layer.size
    return groups


def _base_layer_count(layers: list[Layer]) -> int:
    """Layers before the final stage's LAMBDA_TASK_ROOT check (its first instruction)."""
    for position, layer in enumerate(layers):
        if "LAMBDA_TASK_ROOT is not set" in layer.created_by:
            return position
    raise ValueError(
        "not an image built from captioning/function/Dockerfile: no LAMBDA_TASK_ROOT check in its history"
    )


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def image_platform(tag: str) -> str:
    """`os/architecture` the built image says it is for (its config), e.g. linux/arm64."""
    return docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", tag).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imagebuild image", description=help_description(__doc__))
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument(
        "--model-id", default=None, help=f"Hub model to download (default {DEFAULT_MODEL_ID})"
    )
    parser.add_argument(
        "--model-source",
        default=None,
        help="model directory in the repository to bake (default: the demo model, unless --model-id names"
        " a Hub model to download instead; the two exclude each other)",
    )
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME)
    parser.add_argument("--precision", default=DEFAULT_PRECISION)
    parser.add_argument("--half-precision-weights", default="0", choices=["0", "1"])
    parser.add_argument("--base-image", default=None, help="default: AWS's if pullable, else the stand-in")
    parser.add_argument("--builder", default=os.environ.get("BUILDER", "classic"), help="classic or buildkit")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer (the base is reused)")
    parser.add_argument(
        "--architecture",
        default=DEFAULT_ARCHITECTURE,
        help=f"{' or '.join(ARCHITECTURES)} (default {DEFAULT_ARCHITECTURE}); another than this machine's"
        " builds under QEMU user emulation with BuildKit, for the onnx runtime",
    )
    args = parser.parse_args(argv)
    if args.model_id and args.model_source:
        print(
            "error: MODEL_ID and MODEL_SOURCE exclude each other: give the Hub model to download"
            " or the model directory to bake",
            file=sys.stderr,
        )
        return 2
    options = ImageOptions(
        tag=args.tag,
        model_id=args.model_id or DEFAULT_MODEL_ID,
        model_source=args.model_source or (None if args.model_id else DEMO_MODEL_SOURCE),
        runtime=args.runtime,
        precision=args.precision,
        half_precision_weights=args.half_precision_weights == "1",
        base_image=args.base_image or None,
        builder=args.builder,
        no_cache=args.no_cache,
        architecture=args.architecture,
    )
    problems = options.problems()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    seconds = build(options)
    groups = layer_groups(options.tag)
    summary = ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in groups.items())
    print(
        f"built {options.tag} ({image_platform(options.tag)}) in {seconds:.0f} s:"
        f" {image_size(options.tag) / 1e6:.0f} MB ({summary})"
    )
    return 0
