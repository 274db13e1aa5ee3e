"""Build-time preparation of any family (captioning/preparation/fetch.py, save_torch.py), Hub faked.

The Hub is unreachable here: a fake HfApi lists a local "repository" directory and a fake
snapshot_download copies the files its allow_patterns select, recording what was asked for.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from captioning.function.generic_captioner import GenericCaptioner
from captioning.preparation import fetch
from captioning.preparation.__main__ import format_size
from captioning.preparation.__main__ import main as prepare_main
from captioning.preparation.errors import PreparationRefused
from captioning.preparation.fetch import ModelRefused, check_loadable, fetch_from_hub, files_to_download
from captioning.preparation.save_torch import save_torch_model
from tests import tiny_families

EXTRAS = {
    "README.md": "# a model card",
    "pytorch_model.bin": "old checkpoint",
    "tf_model.h5": "tensorflow weights",
    "flax_model.msgpack": "flax weights",
    "onnx/encoder_model.onnx": "an onnx copy",
    "onnx/config.json": "{}",
    "images/example.jpg": "jpeg",
    "training_args.bin": "pickle",
    "modeling_custom.py": "print('remote code')",
}


class FakeHub:
    """`HfApi().list_repo_files` and `snapshot_download` over local repository directories."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.downloads: list[tuple[str, list[str]]] = []

    def list_repo_files(self, model_id: str) -> list[str]:
        root = self.repos[model_id]
        return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())

    def snapshot_download(self, model_id: str, *, local_dir: Path, allow_patterns: list[str]) -> str:
        self.downloads.append((model_id, list(allow_patterns)))
        root = self.repos[model_id]
        for name in self.list_repo_files(model_id):
            if any(fnmatch.fnmatch(name, pattern) for pattern in allow_patterns):
                target = Path(local_dir) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / name, target)
        return str(local_dir)


def _repo(tmp_path: Path, family: str, **config_changes) -> Path:
    """A Hub-like repository: a tiny model of `family` plus the files loading does not need."""
    repo = tiny_families.BUILDERS[family](tmp_path / "repos" / family)
    for name, text in EXTRAS.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    if config_changes:
        config = json.loads((repo / "config.json").read_text())
        (repo / "config.json").write_text(json.dumps(config | config_changes))
    return repo


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 256, (30, 40 + 9 * i, 3), dtype=np.uint8)) for i in range(3)]


def test_only_what_loading_needs_is_selected() -> None:
    listing = [
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
        "chat_template.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tf_model.h5",
        "onnx/config.json",
        "onnx/decoder_model.onnx",
        "README.md",
        ".gitattributes",
        "images/cat.jpg",
    ]
    assert files_to_download(listing) == [
        "chat_template.json",
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "model.safetensors",
    ]
    sharded = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    sharded += ["model.safetensors.index.json", "pytorch_model.bin"]
    assert files_to_download(sharded)[1:] == sharded[1:4]
    assert files_to_download(["config.json", "pytorch_model.bin", "spiece.model"]) == [
        "config.json",
        "spiece.model",
        "pytorch_model.bin",
    ], "the PyTorch checkpoint only when there is no safetensors"


@pytest.mark.parametrize("family", ["blip", "florence2", "idefics3"])
def test_a_hub_model_is_downloaded_selectively_and_prepared_for_the_torch_runtime(
    family: str, tmp_path: Path
) -> None:
    repo = _repo(tmp_path, family)
    hub = FakeHub({f"org/{family}": repo})
    source = fetch_from_hub(f"org/{family}", tmp_path / "download", api=hub, download=hub.snapshot_download)
    downloaded = sorted(str(path.relative_to(source)) for path in source.rglob("*") if path.is_file())
    assert not set(downloaded) & set(EXTRAS), "nothing loading does not need"
    assert "model.safetensors" in downloaded
    first_call = hub.downloads[0][1]
    assert not any(name.endswith((".safetensors", ".bin")) for name in first_call), "configs checked first"

    output = tmp_path / "prepared"
    save_torch_model(source, output)
    assert not list(output.glob("*.bin")) and (output / "model.safetensors").is_file()
    images = _images()
    expected = GenericCaptioner.load(repo, num_beams=2, max_length=8).caption(images)
    assert GenericCaptioner.load(output, num_beams=2, max_length=8).caption(images) == expected


def test_half_stores_float16_safetensors(tmp_path: Path) -> None:
    source = tiny_families.build_git(tmp_path / "git")
    save_torch_model(source, tmp_path / "half", half_precision_weights=True)
    with safe_open(tmp_path / "half" / "model.safetensors", framework="pt") as weights:
        dtypes = {str(weights.get_slice(name).get_dtype()) for name in weights.keys()}  # noqa: SIM118
    assert dtypes == {"F16"}
    assert len(GenericCaptioner.load(tmp_path / "half").caption(_images()[:1])) == 1


def test_remote_code_is_refused_before_any_weights_are_downloaded(tmp_path: Path) -> None:
    auto_map = {"AutoModelForCausalLM": "modeling_florence2.Florence2ForConditionalGeneration"}
    repo = _repo(tmp_path, "florence2", auto_map=auto_map)
    hub = FakeHub({"microsoft/Florence-2-base": repo})
    with pytest.raises(ModelRefused) as refused:
        fetch_from_hub(
            "microsoft/Florence-2-base", tmp_path / "download", api=hub, download=hub.snapshot_download
        )
    message = str(refused.value)
    assert "microsoft/Florence-2-base needs trust_remote_code" in message
    assert "use florence-community/Florence-2-base" in message
    assert isinstance(refused.value, PreparationRefused), "the CLI reports it as a refusal, not a traceback"
    assert len(hub.downloads) == 1 and all(
        not name.endswith((".safetensors", ".bin", ".py")) for name in hub.downloads[0][1]
    )


def test_an_auto_map_in_processor_files_is_refused_too(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "blip")
    tokenizer_config = json.loads((repo / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["tokenization_custom.CustomTokenizer", None]}
    (repo / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    with pytest.raises(ModelRefused, match="tokenizer_config.json has auto_map"):
        check_loadable(repo, "org/blip")


@pytest.mark.parametrize(
    ("model_type", "message"),
    [
        ("my_captioner", "needs trust_remote_code \\(model_type 'my_captioner' is not in transformers\\)"),
        ("bert", "is a 'bert' model, not an image captioning"),
    ],
)
def test_models_transformers_cannot_caption_natively_are_refused(
    model_type: str, message: str, tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(ModelRefused, match=message):
        check_loadable(tmp_path, "org/model")


def test_a_local_source_with_remote_code_is_refused_by_save_torch(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "git", auto_map={"AutoModel": "modeling_git.Custom"})
    with pytest.raises(ModelRefused, match="trust_remote_code"):
        save_torch_model(repo, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_reports_a_refusal_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import huggingface_hub

    repo = _repo(tmp_path, "florence2", auto_map={"AutoConfig": "configuration_florence2.Florence2Config"})
    hub = FakeHub({"microsoft/Florence-2-large": repo})
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: hub)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr(fetch, "_probe_hub", lambda: None)
    argv = [
        "--model-id",
        "microsoft/Florence-2-large",
        "--output",
        str(tmp_path / "out"),
        "--runtime",
        "torch",
    ]
    assert prepare_main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("captioning.preparation: microsoft/Florence-2-large needs trust_remote_code")
    assert "florence-community/Florence-2-large" in error and "Traceback" not in error


def test_an_unreachable_hub_is_a_clear_refusal(tmp_path: Path) -> None:
    class OfflineApi:
        def list_repo_files(self, model_id: str) -> list[str]:
            raise OSError("[Errno -2] Name or service not known")

    with pytest.raises(
        ModelRefused, match="could not download org/model from the Hugging Face Hub.*--source"
    ):
        fetch_from_hub("org/model", tmp_path, api=OfflineApi(), download=None)


REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = REPO_ROOT / "models" / "demo-shapes"


def _no_hub(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any download instead of making it: a --source must never be replaced by one."""
    asked: list[str] = []

    def refuse(model_id: str, into: Path, **kwargs: object) -> Path:
        asked.append(model_id)
        raise AssertionError(f"downloaded {model_id}")

    monkeypatch.setattr("captioning.preparation.__main__.fetch_from_hub", refuse)
    return asked


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        ({}, "missing config.json and weights (model.safetensors or pytorch_model.bin"),
        ({"cat.jpg": "jpeg"}, "missing config.json and weights"),
        ({"README.md": "placeholder"}, "missing config.json and weights"),
        ({"config.json": "{}"}, "missing weights (model.safetensors or pytorch_model.bin"),
    ],
    ids=["empty", "samples", "hub-placeholder", "config-only"],
)
@pytest.mark.parametrize("model_id", [None, "nlpconnect/vit-gpt2-image-captioning"])
def test_a_source_that_is_no_model_is_refused_and_never_replaced_by_a_download(
    files: dict[str, str],
    missing: str,
    model_id: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asked = _no_hub(monkeypatch)
    source = tmp_path / "source"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    argv = ["--source", str(source), "--output", str(tmp_path / "out")]
    argv += ["--model-id", model_id] if model_id else []
    assert prepare_main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"captioning.preparation: --source {source}: no model in {source}: {missing}")
    assert "a model directory holds config.json plus weights" in error and error.count("\n") == 1
    assert asked == [] and not (tmp_path / "out").exists()


def test_a_source_and_a_model_id_exclude_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = _no_hub(monkeypatch)
    argv = ["--source", str(DEMO_MODEL), "--model-id", "org/m", "--output", str(tmp_path / "out")]
    assert prepare_main(argv) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert asked == []


def _prepared_onnx(directory: Path, precision: str) -> Path:
    directory.mkdir()
    (directory / "onnx_model.json").write_text(json.dumps({"format": 1, "precision": precision}))
    for name in ("config.json", "tokenizer.json"):
        (directory / name).write_text("{}")
    for name in ("encoder.onnx", "decoder_step.onnx", "encoder.onnx.data"):
        (directory / name).write_bytes(b"\0" * 2048)
    return directory


def test_a_prepared_onnx_source_is_copied_for_its_runtime_and_precision_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_hub(monkeypatch)
    source = _prepared_onnx(tmp_path / "exported", "int8")
    out = tmp_path / "out"
    assert prepare_main(["--source", str(source), "--output", str(out), "--precision", "int8"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in source.iterdir())
    for argv in (["--precision", "fp32"], ["--runtime", "torch"]):
        assert prepare_main(["--source", str(source), "--output", str(tmp_path / "other"), *argv]) == 2
        error = capsys.readouterr().err
        assert (
            "is a prepared ONNX model (int8 graphs): it serves only --runtime onnx --precision int8" in error
        )
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (999, "999 bytes"),
        (1_000, "1 KB"),
        (81_234, "81.2 KB"),
        (812_345, "812 KB"),
        (1_051_805, "1.05 MB"),
        (345_600_000, "346 MB"),
        (1_234_000_000, "1.23 GB"),
    ],
)
def test_sizes_are_printed_in_the_unit_that_fits(size: int, text: str) -> None:
    assert format_size(size) == text


def test_the_demo_model_s_size_is_printed_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert prepare_main(["--source", str(DEMO_MODEL), "--output", str(out), "--runtime", "torch"]) == 0
    printed = capsys.readouterr().out
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    match = re.search(r"; ([0-9.]+) (KB|MB)\)$", printed.strip())
    assert match, printed
    value = float(match[1]) * {"KB": 1e3, "MB": 1e6}[match[2]]
    assert abs(value - size) / size < 0.01, (printed, size)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: nothing listens there


def test_an_unreachable_hub_fails_within_seconds(tmp_path: Path) -> None:
    """huggingface_hub alone retries a refused connection five times (about 23 s) before failing."""
    environment = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    environment.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "captioning.preparation",
            "--model-id",
            "org/model",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environment,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "captioning.preparation: could not download org/model from the Hugging Face Hub"
    )
    assert "Retrying" not in result.stderr
    assert elapsed < 6, f"{elapsed:.1f} s"
