"""`pip install` of the package into a fresh virtual environment, used from a program outside the repository:
the import works, the build context comes from the installed files, `model_dir` from the program's folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from captioning.build_context import context_files

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = REPO_ROOT / "models" / "demo-shapes"
# What a clone holds of the package (the rest of the repository is not needed to install it).
PACKAGE_SOURCES = ("pyproject.toml", "README.md", "components", "handler")

# Run by the fresh environment's Python, in the program's folder: a Pulumi program under mocks.
PROGRAM = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import pulumi

    registered = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            registered.append((args.typ, args.inputs))
            return f"{args.name}-id", {**args.inputs, "repositoryUrl": "1.dkr.ecr.us-east-1.amazonaws.com/r",
                                       "sha256Digest": "sha256:" + "0" * 64, "url": "u",
                                       "arn": f"arn:aws:lambda:us-east-1:123456789012:function:{args.name}"}

        def call(self, args):
            return {"accountId": "123456789012", "proxyEndpoint": "https://1.dkr.ecr", "userName": "AWS",
                    "password": "p"}

    pulumi.runtime.set_mocks(Mocks(), project="consumer", stack="dev", preview=False)

    import captioning
    from captioning import CaptioningPipeline, CaptioningPipelineArgs

    report = {"package": captioning.__file__}

    @pulumi.runtime.test
    def program():
        pipeline = CaptioningPipeline(
            "consumer", CaptioningPipelineArgs(memory_size=3072, model_dir="my-model", runtime="onnx")
        )

        def record(_):
            image = "docker:index/remoteImage:RemoteImage"
            (build,) = [inputs["build"] for typ, inputs in registered if typ == image]
            report["build"] = build
            context = Path(build["context"])
            report["context_files"] = sorted(
                p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()
            )

        return pipeline.image_uri.apply(record)

    program()
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def fresh_environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the package installed from a copy of the repository (as a clone is)."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    for name in PACKAGE_SOURCES:
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    environment = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True, timeout=120)  # noqa: S603
    install = subprocess.run(  # noqa: S603
        [str(environment / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    shutil.rmtree(source)  # the installed files must be all the component needs
    return environment


def test_the_component_imports_from_the_installed_files_outside_the_repository(fresh_environment, tmp_path):
    site = subprocess.run(  # noqa: S603
        [
            str(fresh_environment / "bin" / "python"),
            "-c",
            "import json, captioning, captioning.build_context as b; "
            "from captioning import CaptioningPipeline, CaptioningPipelineArgs; "
            "print(captioning.__file__); print(b.handler_directory()); "
            "print(json.dumps(list(b.context_files(None))))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert site.returncode == 0, site.stderr
    package_file, handler_dir, context_names = site.stdout.splitlines()
    assert Path(package_file).is_relative_to(fresh_environment)
    assert Path(handler_dir).is_relative_to(fresh_environment)
    for name in ("Dockerfile", "main.py", "requirements-onnx.txt", "prepare_model/__main__.py", "hub_model"):
        assert (Path(handler_dir) / name).exists(), name
    assert not (Path(handler_dir) / "build").exists(), "the image build tools are not part of the package"
    # The package data (pyproject.toml) holds every file the image is built from, as the repository has it.
    assert json.loads(context_names) == list(context_files(None))


def test_a_program_outside_the_repository_builds_its_image_from_the_installed_files(
    fresh_environment, tmp_path
):
    program_dir = tmp_path / "consumer"
    shutil.copytree(DEMO_MODEL, program_dir / "my-model")
    (program_dir / "__main__.py").write_text(PROGRAM)
    cache = tmp_path / "cache"
    run = subprocess.run(  # noqa: S603
        [str(fresh_environment / "bin" / "python"), "__main__.py"],
        cwd=program_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CAPTIONING_BUILD_CACHE": str(cache)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).is_relative_to(fresh_environment)
    build = report["build"]
    context = Path(build["context"])
    assert context.is_relative_to(cache)
    assert build["dockerfile"] == "handler/Dockerfile"
    assert build["buildArgs"]["MODEL_SOURCE"] == "model"
    files = report["context_files"]
    assert "handler/Dockerfile" in files and "handler/main.py" in files
    assert "handler/prepare_model/__main__.py" in files
    assert "model/config.json" in files, "the program's model directory, taken from the program's folder"
    assert not [name for name in files if name.startswith(("handler/build/", "components/"))]
    installed_dockerfile = fresh_environment.glob("lib/python*/site-packages/captioning/handler/Dockerfile")
    assert (context / "handler" / "Dockerfile").read_bytes() == next(installed_dockerfile).read_bytes()
