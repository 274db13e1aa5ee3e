"""The function image: Dockerfile stages, layer order, CPU wheel index, build args, CMD; .dockerignore;
and the build-time model preparation (handler/download_model.py)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open

from handler import download_model
from handler.constants import MODEL_DIR_IN_IMAGE as DEFAULT_MODEL_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "handler" / "Dockerfile"
CPU_WHEEL_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def index(self, keyword: str, pattern: str) -> int:
        for position, (instruction, arguments) in enumerate(self.instructions):
            if instruction == keyword and re.search(pattern, arguments):
                return position
        raise AssertionError(f"no {keyword} matching {pattern!r} in stage {self.name}")


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each a list of (INSTRUCTION, arguments)."""
    logical_lines: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical_lines.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines:
        keyword, _, arguments = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = arguments.split()
            stages.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        elif not stages and keyword == "ARG":
            name, _, default = arguments.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, arguments.strip()))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def stage_args(stage: Stage) -> dict[str, str]:
    return {
        name: default
        for name, _, default in (
            arguments.partition("=") for keyword, arguments in stage.instructions if keyword == "ARG"
        )
    }


def test_two_stages_with_the_lambda_python_base_image_last(dockerfile) -> None:
    global_args, stages = dockerfile
    assert [stage.name for stage in stages] == ["model", "function"]
    assert all(stage.base == "${BASE_IMAGE}" for stage in stages)
    assert re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.1[1-3]", global_args["BASE_IMAGE"])


def test_build_args_name_the_model_or_a_local_directory(dockerfile) -> None:
    _, (model_stage, _) = dockerfile
    args = stage_args(model_stage)
    assert args["MODEL_ID"] == "nlpconnect/vit-gpt2-image-captioning" == download_model.DEFAULT_MODEL_ID
    placeholder = REPO_ROOT / args["MODEL_SOURCE"]
    assert placeholder.is_dir() and not (placeholder / "config.json").exists()
    assert args["HALF_WEIGHTS"] == "0"
    model_stage.index("COPY", r"^\$\{MODEL_SOURCE\}/ ")
    run = model_stage.instructions[model_stage.index("RUN", r"download_model\.py")][1]
    assert '--model-id "${MODEL_ID}"' in run and "--source" in run and f"--output {DEFAULT_MODEL_DIR}" in run


def test_torch_comes_from_the_cpu_wheel_index_before_anything_else(dockerfile) -> None:
    global_args, stages = dockerfile
    assert global_args["TORCH_INDEX_URL"] == CPU_WHEEL_INDEX
    for stage in stages:
        runs = [
            arguments
            for keyword, arguments in stage.instructions
            if keyword == "RUN" and "pip install" in arguments
        ]
        installs = [
            command.strip() for run in runs for command in run.split("&&") if "pip install" in command
        ]
        assert installs, f"stage {stage.name} installs nothing"
        assert '--index-url "${TORCH_INDEX_URL}"' in installs[0] and "torch==" in installs[0]
        assert all("-r /tmp/" in command for command in installs[1:])
        assert all("--extra-index-url" not in command for command in installs)


def test_final_stage_layers_go_model_then_libraries_then_code(dockerfile) -> None:
    _, (_, function_stage) = dockerfile
    model_layer = function_stage.index("COPY", rf"^--from=model {DEFAULT_MODEL_DIR} {DEFAULT_MODEL_DIR}$")
    libraries_layer = function_stage.index("RUN", r"pip install")
    code_layer = function_stage.index("COPY", r"^handler/\*\.py \$\{LAMBDA_TASK_ROOT\}/handler/$")
    assert model_layer < libraries_layer < code_layer
    later_instructions = function_stage.instructions[code_layer + 1 :]
    assert [keyword for keyword, _ in later_instructions] == ["RUN", "CMD"]


def test_cmd_and_environment(dockerfile) -> None:
    _, (_, function_stage) = dockerfile
    cmd = function_stage.instructions[function_stage.index("CMD", ".")][1]
    assert json.loads(cmd) == ["handler.main.handler"]
    env = " ".join(arguments for keyword, arguments in function_stage.instructions if keyword == "ENV")
    environment = dict(pair.split("=", 1) for pair in shlex.split(env))
    expected = {"MODEL_DIR": DEFAULT_MODEL_DIR, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    assert environment.items() >= expected.items()


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, pattern)
        or any(fnmatch.fnmatch("/".join(parts[: depth + 1]), pattern) for depth in range(len(parts)))
        or (pattern.startswith("**/") and any(fnmatch.fnmatch(part, pattern[3:]) for part in parts))
        for pattern in patterns
    )


def test_dockerignore_keeps_tests_venvs_caches_and_samples_out() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for unwanted in [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/test_handler.py",
        "samples/cat.jpg",
        "handler/__pycache__/main.cpython-312.pyc",
        ".pytest_cache/v",
        "bench/results.png",
    ]:
        assert _ignored(unwanted, patterns), unwanted
    for needed in [
        "handler/main.py",
        "handler/requirements-torch.txt",
        "handler/download_model.py",
        "handler/hub_model/README.md",
        "models/demo-shapes/config.json",
        "models/demo-shapes/model.safetensors",
    ]:
        assert not _ignored(needed, patterns), needed


@pytest.mark.parametrize("half", [False, True], ids=["float32", "float16"])
def test_download_model_prepares_a_local_directory_as_safetensors(
    tiny_model_dir: Path, tmp_path: Path, half: bool
) -> None:
    from handler.captioner import Captioner

    output = tmp_path / "model"
    argv = ["--source", str(tiny_model_dir), "--output", str(output)] + (["--half"] if half else [])
    assert download_model.main(argv) == 0

    assert not list(output.glob("*.bin"))
    with safe_open(str(output / "model.safetensors"), framework="pt") as weights:
        dtypes = {str(weights.get_slice(name).get_dtype()) for name in weights.keys()}  # noqa: SIM118  safe_open is no dict
    assert dtypes == ({"F16"} if half else {"F32"})
    captioner = Captioner.load(output, num_beams=2, max_length=6)
    assert len(captioner.caption([Image.new("RGB", (40, 40))])) == 1


def test_download_model_goes_to_the_hub_when_the_source_is_the_placeholder(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested = []

    def fake_hub(model_id: str, into: Path) -> Path:
        requested.append(model_id)
        return tiny_model_dir

    monkeypatch.setattr(download_model, "fetch_from_hub", fake_hub)
    placeholder = REPO_ROOT / "handler" / "hub_model"
    download_model.main(
        ["--source", str(placeholder), "--model-id", "org/some-captioner", "--output", str(tmp_path / "m")]
    )
    assert requested == ["org/some-captioner"]
    assert (tmp_path / "m" / "model.safetensors").is_file()
