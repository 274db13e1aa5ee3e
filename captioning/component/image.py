"""The function image: an ECR repository, the image built from captioning/function/Dockerfile and pushed to
it.

The build context is assembled from the installed package (captioning.component.build_context).

Built with the bridged `docker.RemoteImage` (local build) + `docker.RegistryImage` (push), not the
native `docker.Image`: only the bridged build exposes buildx's `provenance` and `sbom` switches. With
them on (buildx's default) even a single-platform build is pushed as an OCI image *index*, which Lambda
refuses ("The image manifest, config or layer media type ... is not supported"). `image_build_settings`
turns both off and builds one platform, so the pushed reference is a single image manifest (what a
registry gets from the engine is checked by tests/image/test_manifest.py). The bridged build needs an
engine without the containerd image store (Docker 29's default: turn it off for `pulumi up`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from captioning.component import policies
from captioning.component.build_context import BuildContext, prepare_build_context
from captioning.component.settings import PipelineSettings
from captioning.contract.build_args import DOCKERFILE, dockerfile_build_args


@dataclass
class FunctionImage:
    repository: aws.ecr.Repository
    lifecycle_policy: aws.ecr.LifecyclePolicy
    pull_policy: aws.ecr.RepositoryPolicy
    image: docker.RemoteImage
    """The image built locally, tagged `repository:stack`."""
    pushed: docker.RegistryImage
    """That image pushed to the repository; its `sha256_digest` is the manifest's."""

    @property
    def uri(self) -> pulumi.Output[str]:
        """`repository@sha256:...`: a digest, never a mutable tag, so each rebuild rolls the function."""
        return pulumi.Output.all(self.repository.repository_url, self.pushed.sha256_digest).apply(
            lambda values: f"{values[0]}@{values[1]}"
        )


def registry_credentials(
    repository: aws.ecr.Repository, parent: pulumi.Resource
) -> docker.RegistryImageAuthConfigArgs:
    """Short-lived ECR push credentials; the password is marked secret so it never reaches state in clear."""
    token = aws.ecr.get_authorization_token_output(
        registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=parent)
    )
    return docker.RegistryImageAuthConfigArgs(
        address=token.proxy_endpoint,
        username=token.user_name,
        password=pulumi.Output.secret(token.password),
    )


def build_args(settings: PipelineSettings, context: BuildContext) -> dict[str, str]:
    """Docker build arguments of captioning/function/Dockerfile: the model directory the context holds,
    else the model id to download."""
    return dockerfile_build_args(
        model_id=settings.model_id,
        model_source=context.model_source,
        runtime=settings.runtime,
        precision=settings.precision,
        half_precision_weights=settings.half_precision_weights,
    )


def image_build_settings(settings: PipelineSettings, context: BuildContext) -> docker.RemoteImageBuildArgs:
    """One platform, no provenance or SBOM attestations: the pushed reference is a single image manifest."""
    return docker.RemoteImageBuildArgs(
        context=str(context.path),
        dockerfile=DOCKERFILE,
        platform=settings.platform,
        build_args=build_args(settings, context),
        provenance="false",
        sbom="false",
    )


def _repository_encryption(
    settings: PipelineSettings,
) -> list[aws.ecr.RepositoryEncryptionConfigurationArgs] | None:
    """KMS with kms_key_arn's key, else ECR's default (AES-256). ECR cannot change it later: a new key
    replaces the repository."""
    if settings.kms_key_arn is None:
        return None
    return [
        aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=settings.kms_key_arn)
    ]


def create_function_image(
    name: str, settings: PipelineSettings, *, account_id: pulumi.Input[str], parent: pulumi.Resource
) -> FunctionImage:
    child = pulumi.ResourceOptions(parent=parent)
    repository = aws.ecr.Repository(
        f"{name}-repository",
        image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
        encryption_configurations=_repository_encryption(settings),
        force_delete=settings.force_destroy,
        tags=settings.tags,
        opts=child,
    )
    lifecycle_policy = aws.ecr.LifecyclePolicy(
        f"{name}-repository-lifecycle",
        repository=repository.name,
        policy=json.dumps(policies.keep_last_images_lifecycle_policy(settings.images_to_keep)),
        opts=child,
    )
    pull_policy = aws.ecr.RepositoryPolicy(
        f"{name}-repository-lambda-pull",
        repository=repository.name,
        policy=pulumi.Output.from_input(account_id).apply(
            lambda account: json.dumps(policies.image_pull_repository_policy(account))
        ),
        opts=child,
    )
    context = prepare_build_context(settings.model_dir)
    image = docker.RemoteImage(
        f"{name}-image",
        name=repository.repository_url.apply(lambda url: f"{url}:{pulumi.get_stack()}"),
        build=image_build_settings(settings, context),
        # The bridged build reruns only when a file it is made from changes.
        triggers={"context": context.fingerprint},
        keep_locally=True,
        opts=child,
    )
    pushed = docker.RegistryImage(
        f"{name}-image-push",
        name=image.name,
        auth_config=registry_credentials(repository, parent),
        triggers={"image_id": image.image_id},
        keep_remotely=True,  # older digests stay until the lifecycle policy expires them (rollback)
        opts=child,
    )
    return FunctionImage(repository, lifecycle_policy, pull_policy, image, pushed)
