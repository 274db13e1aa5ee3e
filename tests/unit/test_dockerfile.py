"""The function image's recipe, read without Docker: captioning/function/Dockerfile's stages, layer order,
indexes and build args; .dockerignore; `make image`'s options; the offline wheelhouse index; the layer
grouping of `docker history`; how local/function_container.py starts the container. The built image itself is
checked by tests/image (`make image-test`)."""
# ruff: noqa: S101, S108, S603, S607  (asserts; the fixed "/tmp" tmpfs option; `make -n` with fixed arguments)

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from captioning.contract import constants
from captioning.contract.environment import OFFLINE_ENVIRONMENT
from imagebuild import function_image, image_test, wheelhouse
from imagebuild.function_image import ImageOptions, Layer
from local import function_container
from local.function_container import FunctionContainer, FunctionError

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "captioning" / "function" / "Dockerfile"
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

    def runs(self) -> list[str]:
        return [arguments for keyword, arguments in self.instructions if keyword == "RUN"]

    def args(self) -> dict[str, str]:
        return {
            name: default
            for name, _, default in (
                arguments.partition("=") for keyword, arguments in self.instructions if keyword == "ARG"
            )
        }


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
            words = [word for word in arguments.split() if not word.startswith("--platform=")]
            stages.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        elif not stages and keyword == "ARG":
            name, _, default = arguments.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, re.sub(r"\s+", " ", arguments.strip())))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_no_syntax_directive_so_buildkit_fetches_no_frontend_offline() -> None:
    first_lines = DOCKERFILE.read_text().splitlines()[:5]
    assert not any(re.match(r"#\s*syntax\s*=", line, re.IGNORECASE) for line in first_lines)


def test_three_stages_on_the_lambda_python_base_image(dockerfile) -> None:
    global_args, stages = dockerfile
    assert [stage.name for stage in stages] == ["model", "libraries", "function"]
    assert [stage.base for stage in stages] == ["${MODEL_STAGE_BASE_IMAGE}", "${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert global_args["MODEL_STAGE_BASE_IMAGE"] == "${BASE_IMAGE}"
    # The prepared model is platform-neutral: the model stage runs where the build runs, not emulated.
    assert global_args["MODEL_STAGE_PLATFORM"] == "${BUILDPLATFORM:-linux/amd64}"
    assert (
        "FROM --platform=${MODEL_STAGE_PLATFORM} ${MODEL_STAGE_BASE_IMAGE} AS model" in DOCKERFILE.read_text()
    )
    assert re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.1[1-3]", global_args["BASE_IMAGE"])


def test_model_stage_prepares_the_model_with_the_build_args(dockerfile) -> None:
    _, (model_stage, _, _) = dockerfile
    args = model_stage.args()
    assert args["MODEL_ID"] == constants.DEFAULT_MODEL_ID
    assert args["RUNTIME"] == constants.DEFAULT_RUNTIME
    assert args["PRECISION"] == constants.DEFAULT_PRECISION
    assert args["HALF_PRECISION_WEIGHTS"] == "0"
    assert args["MODEL_SOURCE"] == "", "no model source by default: download MODEL_ID"
    placeholder = REPO_ROOT / function_image.HUB_PLACEHOLDER
    assert placeholder.is_dir() and not (placeholder / "config.json").exists()
    model_stage.index("COPY", rf"^\$\{{MODEL_SOURCE:-{re.escape(function_image.HUB_PLACEHOLDER)}\}}/ ")
    run = model_stage.runs()[-1]
    assert 'python -m captioning.preparation "$@"' in run
    for expected in (
        f"--output {constants.MODEL_DIR_IN_IMAGE}",
        '--runtime "${RUNTIME}"',
        '--precision "${PRECISION}"',
        '$([ "${HALF_PRECISION_WEIGHTS}" = "1" ] && echo --half-precision-weights)',
    ):
        assert expected in run, expected


def _prepare_model_arguments(run: str, **build_args: str) -> list[str]:
    """The arguments the model stage's RUN passes to prepare_model, run by a shell with `python` echoing."""
    script = run.replace("python -m captioning.preparation", 'printf "%s\\n"')
    environment = {
        "PATH": "/usr/bin:/bin",
        "RUNTIME": "onnx",
        "PRECISION": "fp32",
        "HALF_PRECISION_WEIGHTS": "0",
    }
    result = subprocess.run(  # noqa: S603
        ["/bin/sh", "-c", script],
        env={**environment, **build_args},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    ("build_args", "source_arguments"),
    [
        ({"MODEL_SOURCE": "", "MODEL_ID": "org/m"}, ["--model-id", "org/m"]),
        ({"MODEL_ID": "org/m"}, ["--model-id", "org/m"]),
        ({"MODEL_SOURCE": "models/demo-shapes", "MODEL_ID": "org/m"}, ["--source", "/build/model-source"]),
        ({"MODEL_SOURCE": "model", "MODEL_ID": "nlpconnect/vit-gpt2"}, ["--source", "/build/model-source"]),
    ],
)
def test_the_model_stage_passes_a_model_source_or_a_model_id_never_both(
    dockerfile, build_args: dict[str, str], source_arguments: list[str]
) -> None:
    _, (model_stage, _, _) = dockerfile
    arguments = _prepare_model_arguments(model_stage.runs()[-1], **build_args)
    assert arguments[:2] == source_arguments
    assert ("--model-id" in arguments) != ("--source" in arguments)
    assert arguments[2:] == [
        "--output",
        constants.MODEL_DIR_IN_IMAGE,
        "--runtime",
        "onnx",
        "--precision",
        "fp32",
    ]


def test_make_image_s_build_args_give_a_source_or_download_the_model_id(tmp_path: Path) -> None:
    demo = function_image.build_arguments(ImageOptions(), base="b", index_url="i")
    assert demo["MODEL_SOURCE"] == "models/demo-shapes" and "MODEL_ID" not in demo
    hub = function_image.build_arguments(
        ImageOptions(model_source=None, model_id="org/m"), base="b", index_url="i"
    )
    assert "MODEL_SOURCE" not in hub and hub["MODEL_ID"] == "org/m"
    assert ImageOptions(model_source=None).problems() == []


def test_the_component_s_build_args_give_a_source_only_with_a_model_dir() -> None:
    from captioning.component.build_context import MODEL_SOURCE, BuildContext
    from captioning.component.image import build_args
    from captioning.component.settings import PipelineSettings

    with_model = build_args(PipelineSettings(), BuildContext(REPO_ROOT, "digest", MODEL_SOURCE))
    assert with_model["MODEL_SOURCE"] == MODEL_SOURCE and "MODEL_ID" not in with_model
    downloading = build_args(PipelineSettings(), BuildContext(REPO_ROOT, "digest", None))
    assert "MODEL_SOURCE" not in downloading and downloading["MODEL_ID"] == constants.DEFAULT_MODEL_ID


@pytest.mark.parametrize("model_source", ["models/demo-shapes", None])
def test_both_builders_pass_the_same_model_args_and_the_dockerfile_declares_each(
    dockerfile, model_source: str | None
) -> None:
    """`make image` and the component build with one function's args, each an ARG of the Dockerfile."""
    from captioning.component.build_context import BuildContext
    from captioning.component.image import build_args
    from captioning.component.settings import PipelineSettings

    global_args, stages = dockerfile
    declared = set(global_args) | {name for stage in stages for name in stage.args()}
    options = ImageOptions(model_source=model_source, runtime="torch", half_precision_weights=True)
    made = function_image.build_arguments(options, base="b", index_url="i")
    settings = PipelineSettings(runtime="torch", half_precision_weights=True)
    component = build_args(settings, BuildContext(REPO_ROOT, "digest", model_source))
    assert {name: made[name] for name in component} == component
    assert set(made) - set(component) == {"BASE_IMAGE", "PIP_INDEX_URL", "TORCH_INDEX_URL"}
    assert set(made) <= declared, set(made) - declared


def test_model_stage_caches_its_packages_across_runtimes(dockerfile) -> None:
    """The pip layer comes before any runtime-specific ARG, so both runtimes' builds share it."""
    _, (model_stage, _, _) = dockerfile
    pip_layer = model_stage.index("RUN", r"pip install")
    for name in ("RUNTIME", "PRECISION", "MODEL_ID", "MODEL_SOURCE", "HALF_PRECISION_WEIGHTS"):
        assert model_stage.index("ARG", rf"^{name}\b") > pip_layer, name


def _pip_installs(stage: Stage) -> list[str]:
    return [
        command.strip()
        for run in stage.runs()
        for command in re.split(r"&&|;", run)
        if "pip install" in command or "$install" in command
    ]


def test_torch_comes_from_the_cpu_wheel_index_first_and_nothing_mixes_indexes(dockerfile) -> None:
    _, (model_stage, libraries_stage, _) = dockerfile
    assert (
        model_stage.args()["TORCH_INDEX_URL"] == libraries_stage.args()["TORCH_INDEX_URL"] == CPU_WHEEL_INDEX
    )
    for stage in (model_stage, libraries_stage):
        installs = _pip_installs(stage)
        torch_install = next(command for command in installs if "grep '^torch=='" in command)
        assert '--index-url "${TORCH_INDEX_URL}"' in torch_install
        assert installs.index(torch_install) <= 1
        assert all("--extra-index-url" not in command for command in installs)
        assert any('--index-url "${PIP_INDEX_URL}"' in command for command in installs)


def test_libraries_stage_installs_the_runtime_requirements_onnx_without_dependencies(dockerfile) -> None:
    _, (_, libraries_stage, _) = dockerfile
    libraries_stage.index("COPY", r"^captioning/function/requirements-\$\{RUNTIME\}\.txt ")
    (run,) = libraries_stage.runs()
    assert 'if [ "${RUNTIME}" = "onnx" ]; then nodeps=--no-deps' in run
    assert "--no-cache-dir" in run and "compileall" in run and "unchecked-hash" in run
    for runtime in constants.RUNTIMES:
        assert (REPO_ROOT / "captioning" / "function" / f"requirements-{runtime}.txt").is_file()


def test_final_stage_checks_the_base_then_layers_model_libraries_code(dockerfile) -> None:
    _, (_, _, function_stage) = dockerfile
    # LABELs are metadata (no layer, nothing runs): the first instruction that does anything checks the base.
    keyword, check = next(step for step in function_stage.instructions if step[0] != "LABEL")
    assert keyword == "RUN" and 'test -n "${LAMBDA_TASK_ROOT}"' in check and "exit 1" in check
    model = function_stage.index(
        "COPY", rf"^--from=model {constants.MODEL_DIR_IN_IMAGE} {constants.MODEL_DIR_IN_IMAGE}$"
    )
    libraries = function_stage.index("COPY", r"^--from=libraries /opt/libraries \$\{LAMBDA_TASK_ROOT\}/$")
    front_door = function_stage.index("COPY", r"^captioning/__init__\.py \$\{LAMBDA_TASK_ROOT\}/captioning/$")
    contract = function_stage.index(
        "COPY", r"^captioning/contract/\*\.py \$\{LAMBDA_TASK_ROOT\}/captioning/contract/$"
    )
    code = function_stage.index(
        "COPY", r"^captioning/function/\*\.py \$\{LAMBDA_TASK_ROOT\}/captioning/function/$"
    )
    assert model < libraries < front_door < contract < code
    assert [keyword for keyword, _ in function_stage.instructions[code + 1 :]] == ["RUN", "CMD"]
    assert "compileall" in function_stage.instructions[code + 1][1]
    copied = [arguments for keyword, arguments in function_stage.instructions if keyword == "COPY"]
    assert not [a for a in copied if "component" in a or "preparation" in a or "testing" in a], copied


def test_final_stage_runs_no_pip_and_sees_no_index_url(dockerfile) -> None:
    """Build args used by a RUN show in `docker history`: the final stage declares none that carry a URL."""
    _, (_, _, function_stage) = dockerfile
    assert not _pip_installs(function_stage)
    assert set(function_stage.args()) <= {"RUNTIME", "PRECISION"}
    assert not any("prepare_model" in arguments for _, arguments in function_stage.instructions)


def test_cmd_and_environment(dockerfile) -> None:
    _, (_, _, function_stage) = dockerfile
    cmd = function_stage.instructions[function_stage.index("CMD", ".")][1]
    assert json.loads(cmd) == ["captioning.function.main.handler"]
    env = " ".join(arguments for keyword, arguments in function_stage.instructions if keyword == "ENV")
    environment = dict(pair.split("=", 1) for pair in shlex.split(env))
    expected = {
        "MODEL_DIR": constants.MODEL_DIR_IN_IMAGE,
        "RUNTIME": "${RUNTIME}",
        "PRECISION": "${PRECISION}",
    }
    assert environment.items() >= {**expected, **OFFLINE_ENVIRONMENT}.items()


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, pattern)
        or any(fnmatch.fnmatch("/".join(parts[: depth + 1]), pattern) for depth in range(len(parts)))
        or (pattern.startswith("**/") and any(fnmatch.fnmatch(part, pattern[3:]) for part in parts))
        for pattern in patterns
    )


def test_dockerignore_keeps_tests_venvs_caches_samples_and_build_tools_out() -> None:
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
        "captioning/function/__pycache__/main.cpython-312.pyc",
        ".pytest_cache/v",
        "bench/results.png",
        "imagebuild/function_image.py",
        "docs/container-image.md",
        "captioning/component/pipeline.py",
        "captioning/testing.py",
    ]:
        assert _ignored(unwanted, patterns), unwanted
    for needed in [
        "captioning/__init__.py",
        "captioning/contract/constants.py",
        "captioning/function/main.py",
        "captioning/function/requirements-torch.txt",
        "captioning/function/requirements-onnx.txt",
        "captioning/preparation/requirements-build.txt",
        "captioning/preparation/__main__.py",
        "captioning/preparation/hub_model/README.md",
        "models/demo-shapes/config.json",
        "models/demo-shapes/model.safetensors",
    ]:
        assert not _ignored(needed, patterns), needed


# --- make image ---------------------------------------------------------------------------------------


def make_dry_run(*arguments: str) -> str:
    result = subprocess.run(  # noqa: S603
        ["make", "-n", "-s", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,  # noqa: S607
    )
    return result.stdout


def test_make_image_defaults_to_the_demo_model_and_passes_overrides() -> None:
    assert make_dry_run("image").strip().endswith("-m imagebuild image")
    command = make_dry_run(
        "image",
        "RUNTIME=torch",
        "PRECISION=bf16",
        "HALF_PRECISION_WEIGHTS=1",
        "MODEL_ID=org/m",
        "TAG=t:1",
        "BUILDER=buildkit",
    )
    for expected in (
        '--runtime "torch"',
        '--precision "bf16"',
        '--half-precision-weights "1"',
        '--model-id "org/m"',
        '--tag "t:1"',
        '--builder "buildkit"',
    ):
        assert expected in command, expected


def test_image_options_refuse_bad_combinations_naming_what_is_allowed() -> None:
    assert ImageOptions().problems() == []
    assert (
        ImageOptions().model_source == "models/demo-shapes"
        and ImageOptions().tag == "captioning-function:local"
    )
    (problem,) = ImageOptions(runtime="onnx", precision="bf16").problems()
    assert "bf16" in problem and "fp32, int8" in problem
    (problem,) = ImageOptions(runtime="tensorflow").problems()
    assert "onnx, torch" in problem
    (problem,) = ImageOptions(model_source="models/nowhere").problems()
    assert "models/nowhere" in problem and "does not exist" in problem
    for not_a_model in ("samples", function_image.HUB_PLACEHOLDER):
        (problem,) = ImageOptions(model_source=not_a_model).problems()
        assert f"MODEL_SOURCE {not_a_model!r}" in problem and "missing config.json and weights" in problem


def test_cli_reports_bad_options_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert function_image.main(["--runtime", "onnx", "--precision", "bf16"]) == 2
    assert "error: PRECISION 'bf16'" in capsys.readouterr().err
    assert function_image.main(["--model-id", "org/m", "--model-source", "models/demo-shapes"]) == 2
    assert "MODEL_ID and MODEL_SOURCE exclude each other" in capsys.readouterr().err
    assert function_image.main(["--model-source", "samples"]) == 2
    assert "missing config.json" in capsys.readouterr().err


def test_wheelhouse_is_a_pep503_simple_index(tmp_path: Path) -> None:
    for name in (
        "Pillow-13.0.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        "aws_lambda_powertools-3.37.0-py3-none-any.whl",
    ):
        (tmp_path / name).write_bytes(b"")
    wheelhouse.write_simple_index(tmp_path)
    assert sorted(path.name for path in (tmp_path / "simple").iterdir()) == [
        "aws-lambda-powertools",
        "index.html",
        "pillow",
    ]
    page = (tmp_path / "simple" / "aws-lambda-powertools" / "index.html").read_text()
    assert 'href="../../aws_lambda_powertools-3.37.0-py3-none-any.whl"' in page


def test_wheelhouse_server_listens_on_loopback_only(tmp_path: Path) -> None:
    import urllib.request

    (tmp_path / "simple").mkdir()
    (tmp_path / "simple" / "index.html").write_text("ok")
    with wheelhouse.serve(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/simple/")
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            assert response.read() == b"ok"


HISTORY = [  # oldest first, as function_image.history returns it
    Layer("/bin/sh -c #(nop) ADD file:rootfs in /", 150_000_000),
    Layer('/bin/sh -c #(nop)  ENTRYPOINT ["/lambda-entrypoint.sh"]', 0),
    Layer(
        '/bin/sh -c test -n "${LAMBDA_TASK_ROOT}" || { echo "... LAMBDA_TASK_ROOT is not set" >&2; exit 1; }',
        0,
    ),
    Layer("/bin/sh -c #(nop) COPY dir:abc in /opt/ml/model ", 1_000_000),
    Layer("/bin/sh -c #(nop) COPY dir:def in /var/task/ ", 200_000_000),
    Layer("/bin/sh -c #(nop)  ARG RUNTIME=onnx", 0),
    Layer("/bin/sh -c #(nop)  ENV MODEL_DIR=/opt/ml/model RUNTIME=onnx", 0),
    Layer("/bin/sh -c #(nop) COPY file:init in /var/task/captioning/ ", 1_000),
    Layer("/bin/sh -c #(nop) COPY multi:jkl in /var/task/captioning/contract/ ", 9_000),
    Layer("/bin/sh -c #(nop) COPY multi:ghi in /var/task/captioning/function/ ", 190_000),
    Layer(
        '|2 PRECISION=fp32 RUNTIME=onnx /bin/sh -c python -m compileall -q "${LAMBDA_TASK_ROOT}/captioning"',
        70_000,
    ),
    Layer('/bin/sh -c #(nop)  CMD ["captioning.function.main.handler"]', 0),
]


def test_layer_groups_from_docker_history(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(function_image, "history", lambda tag: HISTORY)
    assert function_image.layer_groups("any") == {
        "base": 150_000_000,
        "model": 1_000_000,
        "libraries": 200_000_000,
        "code": 270_000,
    }


BUILDKIT_HISTORY = [
    Layer("/bin/sh -c #(nop) ADD file:rootfs in /", 150_000_000),
    Layer(
        'RUN /bin/sh -c test -n "${LAMBDA_TASK_ROOT}" || { echo "LAMBDA_TASK_ROOT is not set"; } # buildkit',
        0,
    ),
    Layer("COPY /opt/ml/model /opt/ml/model # buildkit", 1_000_000),
    Layer("COPY /opt/libraries /var/task/ # buildkit", 200_000_000),
    Layer("ENV MODEL_DIR=/opt/ml/model RUNTIME=onnx PRECISION=fp32", 0),
    Layer("COPY captioning/__init__.py /var/task/captioning/ # buildkit", 1_000),
    Layer("COPY captioning/contract/*.py /var/task/captioning/contract/ # buildkit", 9_000),
    Layer("COPY captioning/function/*.py /var/task/captioning/function/ # buildkit", 190_000),
    Layer(
        'RUN |2 RUNTIME=onnx /bin/sh -c python -m compileall "${LAMBDA_TASK_ROOT}/captioning" # buildkit',
        70_000,
    ),
]


def test_layer_groups_read_buildkit_history_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(function_image, "history", lambda tag: BUILDKIT_HISTORY)
    assert function_image.layer_groups("any") == {
        "base": 150_000_000,
        "model": 1_000_000,
        "libraries": 200_000_000,
        "code": 270_000,
    }


def test_layer_groups_refuse_an_image_not_built_from_the_dockerfile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(function_image, "history", lambda tag: HISTORY[:2])
    with pytest.raises(ValueError, match="LAMBDA_TASK_ROOT"):
        function_image.layer_groups("any")


def test_image_test_tags_and_summary() -> None:
    assert image_test.tag_for(constants.DEFAULT_RUNTIME) == "captioning-function:local"
    other = next(runtime for runtime in constants.RUNTIMES if runtime != constants.DEFAULT_RUNTIME)
    assert image_test.tag_for(other) == f"captioning-function:{other}"
    report = {
        "captioning-function:local": {
            "image_bytes": 400_000_000,
            "layer_bytes": {"base": 1, "model": 2_000_000, "libraries": 200_000_000, "code": 300_000},
            "init_duration_ms": 1234.5,
            "first_invocation_s": 2.5,
            "first_invocation_images": 8,
            "manifest_media_type": "application/vnd.docker.distribution.manifest.v2+json",
        }
    }
    text = image_test.summary(report, {"onnx": "captioning-function:local"}, "AMD EPYC")
    for expected in (
        "image 400 MB",
        "model 2.00 MB",
        "code 0.30 MB",
        "libraries 200 MB",
        "INIT 1,234 ms",
        "first invocation 2.50 s",
    ):
        assert expected in text, expected
    assert "manifest.v2+json" in text and "AMD EPYC" in text


# --- local/function_container.py ---------------------------------------------------------------------


def test_container_runs_on_the_host_network_with_the_rie_on_loopback() -> None:
    container = FunctionContainer(
        "captioning-function:local", {"TABLE_NAME": "t", "AWS_REGION": "eu-west-1"}, memory_mb=2048
    )
    container.port, container.runtime_api_port = 45678, 45679
    arguments = container._run_arguments("captioning.function.main.handler")
    assert arguments[:4] == ["run", "--detach", "--network", "host"]
    assert "--read-only" in arguments and "/tmp:rw,exec" in arguments
    assert arguments[arguments.index("--entrypoint") + 1] == function_container.RIE
    tail = arguments[arguments.index("captioning-function:local") :]
    assert tail == [
        "captioning-function:local",
        "--runtime-interface-emulator-address",
        "127.0.0.1:45678",
        "--runtime-api-address",
        "127.0.0.1:45679",
        function_container.RUNTIME_BOOTSTRAP,
        "captioning.function.main.handler",
    ]
    environment = [arguments[i + 1] for i, value in enumerate(arguments) if value == "--env"]
    assert "TABLE_NAME=t" in environment and "_HANDLER=captioning.function.main.handler" in environment
    assert "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048" in environment
    assert "AWS_DEFAULT_REGION=eu-west-1" in environment  # the RIE passes this one on, not AWS_REGION


@pytest.mark.parametrize(
    ("line", "milliseconds"),
    [
        ("28 Nov 2026 01:16:47,315 [INFO] (rapid) INIT REPORT(durationMs: 7500.113000)", 7500.113),
        ("INIT REPORT Init Duration: 812.34 ms\tPhase: init\tStatus: success", 812.34),
        ("REPORT RequestId: x\tInit Duration: 0.08 ms\tDuration: 3 ms", None),
    ],
)
def test_init_duration_comes_from_the_init_report_line(line: str, milliseconds: float | None) -> None:
    container = FunctionContainer("image", {})
    container._final_logs = f"START\n{line}\nEND\n"
    assert container.init_duration_ms == milliseconds


class _FakeRie(BaseHTTPRequestHandler):
    answer: bytes = b"{}"

    def do_POST(self) -> None:  # noqa: N802  http.server's method name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (b'{"batchItemFailures": []}', {"batchItemFailures": []}),
        (b'{"errorMessage": "boom", "errorType": "RuntimeError", "stackTrace": []}', FunctionError),
    ],
)
def test_invoke_returns_the_result_or_raises_the_function_error(answer: bytes, outcome: object) -> None:
    handler = type("Rie", (_FakeRie,), {"answer": answer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        container = FunctionContainer("image", {})
        container.port, container.container_id = server.server_port, "fake"
        container._final_logs = ""
        if outcome is FunctionError:
            with pytest.raises(FunctionError, match="RuntimeError: boom"):
                container.invoke({"Records": []})
        else:
            assert container.invoke({"Records": []}) == outcome
    finally:
        server.shutdown()
        server.server_close()


# --- imagebuild/registry.py: reading a manifest's media type ------------------------------------------


@pytest.mark.parametrize(
    ("served", "single_image"),
    [
        ({"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": []}, True),
        ({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{}, {}]}, False),
        ({"schemaVersion": 2, "manifests": [{}]}, False),  # an index without mediaType: from Content-Type
    ],
)
def test_manifest_media_type_tells_an_image_from_an_index(served: dict, single_image: bool) -> None:
    from imagebuild.registry import IMAGE_MANIFEST_TYPES, INDEX_TYPES, manifest

    seen_accept = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen_accept.append(self.headers["Accept"])
            self.send_response(200)
            media_type = served.get("mediaType", "application/vnd.oci.image.index.v1+json")
            self.send_header("Content-Type", media_type)
            self.end_headers()
            self.wfile.write(json.dumps(served).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        found = manifest(f"127.0.0.1:{server.server_port}/captioning-function:local")
    finally:
        server.shutdown()
        server.server_close()
    assert (found["mediaType"] in IMAGE_MANIFEST_TYPES) is single_image
    assert all(kind in seen_accept[0] for kind in INDEX_TYPES + IMAGE_MANIFEST_TYPES)


def test_wheelhouse_for_another_python_asks_for_linux_wheels_of_that_version() -> None:
    import sys

    own = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert wheelhouse._platform_options(own) == ["--only-binary=:all:"]
    other = wheelhouse._platform_options("3.12" if own != "3.12" else "3.13")
    assert "--python-version" in other and "manylinux_2_28_x86_64" in other
    assert other[other.index("--extra-index-url") + 1] == CPU_WHEEL_INDEX
