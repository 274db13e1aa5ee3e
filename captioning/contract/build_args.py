"""The build arguments of captioning/function/Dockerfile, for both of its builders: the component
(`pulumi up`, captioning.component.image) and `make image` (imagebuild.function_image).

In the contract (standard library only), so the image tooling imports it without Pulumi.
"""

from __future__ import annotations

DOCKERFILE = "captioning/function/Dockerfile"
"""The function image's Dockerfile, relative to the build context (the repository root, or the context the
component assembles from the installed package)."""


def dockerfile_build_args(
    *,
    model_id: str,
    model_source: str | None,
    runtime: str,
    precision: str,
    half_precision_weights: bool,
) -> dict[str, str]:
    """The model comes from one place, never both: MODEL_SOURCE, a model directory in the build context
    to bake, or else MODEL_ID, the Hub model to download; then how the function runs it."""
    model = {"MODEL_SOURCE": model_source} if model_source else {"MODEL_ID": model_id}
    return {
        **model,
        "RUNTIME": runtime,
        "PRECISION": precision,
        "HALF_PRECISION_WEIGHTS": "1" if half_precision_weights else "0",
    }
