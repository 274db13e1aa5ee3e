"""The build arguments of captioning/function/Dockerfile, for both of its builders: the component
(`pulumi up`, captioning.component.image) and `make image` (imagebuild.function_image).

Dependency-free, so the image tooling imports it without Pulumi.
"""

from __future__ import annotations


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
