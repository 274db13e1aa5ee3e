"""The function image: scanned, pruned, built for the function's architecture as a single-platform image
manifest (no provenance/SBOM attestations: Lambda refuses an index), pushed, and pinned by digest."""
# ruff: noqa: S101  (pytest reports failures through plain assert statements)

import json
import re
from pathlib import Path

import pulumi
import pytest

from captioning import CaptioningPipeline, PipelineSettings
from captioning.component import build_context
from captioning.component.build_context import prepare_build_context
from tests.pulumi_mocks import (
    ACCOUNT_ID,
    ECR_HOST,
    ECR_PASSWORD,
    GET_ECR_TOKEN_CALL,
    is_secret_input,
    statements,
    unwrap,
    use_mocks,
)

BUILT = "docker:index/remoteImage:RemoteImage"
PUSHED = "docker:index/registryImage:RegistryImage"
DIGEST_REFERENCE = re.compile(r"^(?P<repository>[^@:]+(?::\d+)?/[^@:]+)@sha256:[0-9a-f]{64}$")


@pulumi.runtime.test
def test_repository_scans_on_push_and_keeps_only_the_last_images():
    use_mocks()
    image = CaptioningPipeline("test", PipelineSettings(images_to_keep=3)).function_image

    def check(values):
        scanning, repository_name, lifecycle_repository, lifecycle_policy = values
        assert scanning["scan_on_push"] is True
        assert lifecycle_repository == repository_name
        (rule,) = json.loads(lifecycle_policy)["rules"]
        assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 3}
        assert rule["action"] == {"type": "expire"}

    return pulumi.Output.all(
        image.repository.image_scanning_configuration,
        image.repository.name,
        image.lifecycle_policy.repository,
        image.lifecycle_policy.policy,
    ).apply(check)


@pytest.mark.parametrize(("architecture", "platform"), [("x86_64", "linux/amd64"), ("arm64", "linux/arm64")])
@pulumi.runtime.test
def test_image_is_built_for_the_function_architecture(architecture, platform):
    mocks = use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings(architecture=architecture))

    def check(values):
        (architectures,) = values
        assert architectures == [architecture]
        assert mocks.one_of_type(BUILT).inputs["build"]["platform"] == platform

    return pulumi.Output.all(pipeline.captioning_function.function.architectures).apply(check)


@pulumi.runtime.test
def test_build_makes_a_single_platform_image_manifest_without_attestations():
    """buildx's default provenance (and an SBOM) would push an OCI index: Lambda refuses those."""
    mocks = use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())

    def check(_):
        build = mocks.one_of_type(BUILT).inputs["build"]
        assert build["provenance"] == "false"
        assert build["sbom"] == "false"
        assert build["platform"] == "linux/amd64"
        assert "," not in build["platform"], "a multi-platform build always makes an index"
        assert not mocks.of_type("docker:index/image:Image"), (
            "the native docker.Image has no provenance switch"
        )

    return pipeline.function_image.uri.apply(check)


@pulumi.runtime.test
def test_image_is_built_from_handler_with_the_model_and_runtime_as_build_args():
    mocks = use_mocks()
    args = PipelineSettings(
        model_id="acme/tiny-captioner",
        model_dir="models/demo-shapes",
        runtime="torch",
        precision="bf16",
        half_precision_weights=True,
    )
    pipeline = CaptioningPipeline("test", args)

    def check(values):
        (image_name,) = values
        build = mocks.one_of_type(BUILT).inputs["build"]
        assert build["context"] == str(prepare_build_context("models/demo-shapes").path)
        context = Path(build["context"])
        assert (context / build["dockerfile"]).read_text().startswith("# The captioning function's image")
        assert (context / "model" / "config.json").is_file(), "the model directory is in the context"
        assert build["buildArgs"] == {  # the model baked from the context; model_id only labels captions
            "MODEL_SOURCE": "model",
            "RUNTIME": "torch",
            "PRECISION": "bf16",
            "HALF_PRECISION_WEIGHTS": "1",
        }
        assert image_name.startswith(f"{ECR_HOST}/test-repository")

    return pulumi.Output.all(pipeline.function_image.image.name).apply(check)


@pulumi.runtime.test
def test_by_default_the_build_downloads_model_id_for_onnx_in_float32():
    mocks = use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())

    def check(_):
        build_args = mocks.one_of_type(BUILT).inputs["build"]["buildArgs"]
        assert build_args == {
            "MODEL_ID": "nlpconnect/vit-gpt2-image-captioning",
            "RUNTIME": "onnx",
            "PRECISION": "fp32",
            "HALF_PRECISION_WEIGHTS": "0",
        }

    return pipeline.function_image.uri.apply(check)


@pulumi.runtime.test
def test_a_change_to_the_code_or_model_rebuilds_and_a_new_image_is_pushed():
    mocks = use_mocks()
    args = PipelineSettings(model_dir="models/demo-shapes")
    pipeline = CaptioningPipeline("test", args)

    def check(values):
        image_id, _ = values
        built, pushed = mocks.one_of_type(BUILT), mocks.one_of_type(PUSHED)
        assert built.inputs["triggers"] == {"context": prepare_build_context(args.model_dir).fingerprint}
        assert pushed.inputs["name"] == built.inputs["name"]
        assert pushed.inputs["triggers"] == {"image_id": image_id}
        assert pushed.inputs["keepRemotely"] is True

    image = pipeline.function_image
    return pulumi.Output.all(image.image.image_id, image.pushed.sha256_digest).apply(check)


def test_context_fingerprint_follows_code_and_model_files(tmp_path, monkeypatch):
    package = tmp_path / "installed" / "captioning"
    for folder in ("function", "preparation", "component"):
        (package / folder).mkdir(parents=True)
    model = tmp_path / "program" / "models" / "m"
    model.mkdir(parents=True)
    monkeypatch.setattr(build_context, "package_directory", lambda: package)
    monkeypatch.chdir(tmp_path / "program")
    files = (
        package / "function" / "main.py",
        package / "preparation" / "export.py",
        package / "function" / "Dockerfile",
        model / "w.bin",
    )
    for path in files:
        path.write_text("1")
    before = prepare_build_context("models/m")
    assert (before.path / "model" / "w.bin").read_text() == "1"
    for path in files:
        path.write_text("2")
        after = prepare_build_context("models/m")
        assert after.fingerprint != before.fingerprint, path
        assert after.path != before.path, "a new context directory, so the build input changes too"
        before = after
    (package / "function" / "notes.md").write_text("not in the image")
    (package / "component" / "pipeline.py").write_text("the component stays out")
    (package / "testing.py").write_text("the mocks stay out")
    assert prepare_build_context("models/m").fingerprint == before.fingerprint
    assert sorted(p.relative_to(before.path).as_posix() for p in before.path.rglob("*") if p.is_file()) == [
        "captioning/function/Dockerfile",
        "captioning/function/main.py",
        "captioning/preparation/export.py",
        "model/w.bin",
    ]


@pulumi.runtime.test
def test_function_references_the_image_by_digest_not_by_tag():
    use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())

    def check(values):
        image_uri, pushed_digest, repository_url, exported = values
        assert image_uri == exported == f"{repository_url}@{pushed_digest}"
        match = DIGEST_REFERENCE.match(image_uri)
        assert match, f"{image_uri} is not repository@sha256:<digest>"
        assert match["repository"] == repository_url

    return pulumi.Output.all(
        pipeline.captioning_function.function.image_uri,
        pipeline.function_image.pushed.sha256_digest,
        pipeline.function_image.repository.repository_url,
        pipeline.image_uri,
    ).apply(check)


@pulumi.runtime.test
def test_registry_login_comes_from_ecr_with_the_password_kept_secret():
    mocks = use_mocks()
    pipeline = CaptioningPipeline("test", PipelineSettings())

    def check(_):
        assert GET_ECR_TOKEN_CALL in mocks.calls
        registry = mocks.one_of_type(PUSHED).inputs["authConfig"]
        assert is_secret_input(registry), "the registry credentials reached the engine in clear"
        assert unwrap(registry)["address"] == f"https://{ECR_HOST}"
        assert unwrap(registry)["username"] == "AWS"
        assert unwrap(unwrap(registry)["password"]) == ECR_PASSWORD

    return pulumi.Output.all(pipeline.function_image.uri).apply(check)


@pulumi.runtime.test
def test_only_lambda_functions_of_this_account_may_pull_the_image():
    use_mocks()
    image = CaptioningPipeline("test", PipelineSettings()).function_image

    def check(values):
        repository_name, policy_repository, policy = values
        assert policy_repository == repository_name
        (statement,) = statements(policy)
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert sorted(statement["Action"]) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        assert statement["Condition"]["StringLike"]["aws:sourceArn"] == (
            f"arn:aws:lambda:*:{ACCOUNT_ID}:function:*"
        )

    return pulumi.Output.all(
        image.repository.name, image.pull_policy.repository, image.pull_policy.policy
    ).apply(check)
