"""The function image: an ECR repository and the image built from handler/ and pushed to it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components import policies
from components.args import CaptioningPipelineArgs


@dataclass
class FunctionImage:
    repository: aws.ecr.Repository
    lifecycle_policy: aws.ecr.LifecyclePolicy
    pull_policy: aws.ecr.RepositoryPolicy
    image: docker.Image

    @property
    def uri(self) -> pulumi.Output[str]:
        """`repository@sha256:...`: a digest, never a mutable tag, so each rebuild rolls the function."""
        return self.image.repo_digest


def registry_credentials(repository: aws.ecr.Repository, parent: pulumi.Resource) -> docker.RegistryArgs:
    """Short-lived ECR push credentials; the password is marked secret so it never reaches state in clear."""
    token = aws.ecr.get_authorization_token_output(
        registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=parent)
    )
    return docker.RegistryArgs(
        server=token.proxy_endpoint,
        username=token.user_name,
        password=pulumi.Output.secret(token.password),
    )


def build_args(args: CaptioningPipelineArgs) -> dict[str, str]:
    """Docker build arguments of handler/Dockerfile (MODEL_SOURCE unset means: download MODEL_ID)."""
    values = {"MODEL_ID": args.model_id, "HALF_WEIGHTS": "1" if args.half_precision_weights else "0"}
    if args.model_dir is not None:
        values["MODEL_SOURCE"] = args.model_dir
    return values


def create_function_image(
    name: str, args: CaptioningPipelineArgs, *, account_id: pulumi.Input[str], parent: pulumi.Resource
) -> FunctionImage:
    child = pulumi.ResourceOptions(parent=parent)
    repository = aws.ecr.Repository(
        f"{name}-repository",
        image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
        force_delete=args.force_destroy,
        tags=args.tags,
        opts=child,
    )
    lifecycle_policy = aws.ecr.LifecyclePolicy(
        f"{name}-repository-lifecycle",
        repository=repository.name,
        policy=json.dumps(policies.keep_last_images_lifecycle_policy(args.images_to_keep)),
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
    image = docker.Image(
        f"{name}-image",
        image_name=repository.repository_url.apply(lambda url: f"{url}:{pulumi.get_stack()}"),
        build=docker.DockerBuildArgs(
            context=args.build_context,
            dockerfile=f"{args.build_context}/{args.dockerfile}",
            platform=args.platform,
            args=build_args(args),
        ),
        registry=registry_credentials(repository, parent),
        opts=child,
    )
    return FunctionImage(repository, lifecycle_policy, pull_policy, image)
