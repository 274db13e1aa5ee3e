"""`pip install <a git clone>` (docs/package.md) into a fresh virtual environment, used from a program outside
the repository: the clone is left as clean as it was (nothing untracked, lint passes), the import works, the
build context comes from the installed files, `model_dir` from the program's folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from captioning.component.build_context import context_files

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = REPO_ROOT / "models" / "demo-shapes"
RUFF = Path(sys.executable).parent / "ruff"

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


@dataclass(frozen=True)
class Installed:
    environment: Path
    """The fresh virtual environment the package was installed into."""
    clone_status: str
    """`git status --porcelain` of the clone after the install."""
    clone_lint: dict[str, subprocess.CompletedProcess[str]]
    """`make lint`'s two ruff commands, run in the clone after the install."""


def _git(*arguments: str, cwd: Path) -> str:
    run = subprocess.run(  # noqa: S603
        ["git", *arguments],  # noqa: S607  git from PATH, as the docs' reader runs it
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull},
    )
    return run.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """What docs/package.md says: clone the repository (its committed HEAD) and `pip install` the clone,
    with the `ops` extra."""
    root = tmp_path_factory.mktemp("package")
    clone = root / "clone"
    _git("clone", "--quiet", str(REPO_ROOT), str(clone), cwd=root)
    environment = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True, timeout=120)  # noqa: S603
    install = subprocess.run(  # noqa: S603
        [str(environment / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{clone}[ops]"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    status = _git("status", "--porcelain", cwd=clone)
    lint = {
        " ".join(command): subprocess.run(  # noqa: S603
            [str(RUFF), *command], cwd=clone, capture_output=True, text=True, timeout=300, check=False
        )
        for command in (("format", "--check", "."), ("check", "."))
    }
    shutil.rmtree(clone)  # the installed files must be all the component needs
    return Installed(environment, status, lint)


@pytest.fixture(scope="module")
def fresh_environment(installed: Installed) -> Path:
    return installed.environment


def test_installing_from_a_clone_leaves_it_clean(installed):
    """No untracked build directory or metadata: `make lint` (and so `make test`) still pass in the clone."""
    assert installed.clone_status == "", f"pip install left in the clone:\n{installed.clone_status}"
    for command, run in installed.clone_lint.items():
        assert run.returncode == 0, f"ruff {command} in the clone after pip install:\n{run.stdout[-3000:]}"


def test_the_component_imports_from_the_installed_files_outside_the_repository(fresh_environment, tmp_path):
    site = subprocess.run(  # noqa: S603
        [
            str(fresh_environment / "bin" / "python"),
            "-c",
            "import json, captioning, captioning.component.build_context as b; "
            "from captioning import CaptioningPipeline, CaptioningPipelineArgs; "
            "from captioning.testing import CaptioningMocks; "
            "print(captioning.__file__); print(b.package_directory()); "
            "print(json.dumps(list(b.context_files(None))))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert site.returncode == 0, site.stderr
    package_file, package_dir, context_names = site.stdout.splitlines()
    assert Path(package_file).is_relative_to(fresh_environment)
    assert Path(package_dir).is_relative_to(fresh_environment)
    for name in (
        "function/Dockerfile",
        "function/main.py",
        "function/requirements-onnx.txt",
        "preparation/__main__.py",
        "preparation/hub_model",
        "contract/constants.py",
    ):
        assert (Path(package_dir) / name).exists(), name
    assert not (Path(package_dir).parent / "imagebuild").exists(), (
        "the image build tools are not in the wheel"
    )
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
    assert build["dockerfile"] == "captioning/function/Dockerfile"
    assert build["buildArgs"]["MODEL_SOURCE"] == "model"
    files = report["context_files"]
    assert "captioning/function/Dockerfile" in files and "captioning/function/main.py" in files
    assert "captioning/preparation/__main__.py" in files
    assert "model/config.json" in files, "the program's model directory, taken from the program's folder"
    assert not [name for name in files if name.startswith(("imagebuild/", "captioning/component/"))]
    installed_dockerfile = fresh_environment.glob("lib/python*/site-packages/captioning/function/Dockerfile")
    assert (context / "captioning" / "function" / "Dockerfile").read_bytes() == next(
        installed_dockerfile
    ).read_bytes()


def test_ops_runs_from_the_installed_package_outside_the_repository(fresh_environment, tmp_path):
    """`python -m ops` is in the wheel (its extra brings boto3 and rich): it answers from any directory."""
    run = subprocess.run(  # noqa: S603
        [str(fresh_environment / "bin" / "python"), "-m", "ops", "status", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "python -m ops" in run.stdout
