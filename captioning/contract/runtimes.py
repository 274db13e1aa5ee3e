"""What each runtime can run: the one check of a runtime and a precision (or float16-stored weights) that
the component, the function, the image build and the model preparation all ask.

Dependency-free, like the rest of the contract. Each caller names the settings as its users spell them
(`precision`, `--precision`, `PRECISION`), so the problem reads in the caller's own terms.
"""

from __future__ import annotations

from captioning.contract.constants import HALF_PRECISION_WEIGHTS_RUNTIMES, PRECISIONS, RUNTIME_PRECISIONS


def supported_precisions(runtime: str | None) -> tuple[str, ...]:
    """The precisions `runtime` runs; every precision when no runtime is given (or one not known)."""
    return RUNTIME_PRECISIONS.get(runtime, PRECISIONS) if runtime is not None else PRECISIONS


def precision_problem(
    runtime: str | None,
    precision: object,
    *,
    runtime_name: str = "runtime",
    precision_name: str = "precision",
) -> str | None:
    """Why `precision` cannot run on `runtime` (None: on any runtime), or None when it can."""
    allowed = supported_precisions(runtime)
    if precision in allowed:
        return None
    if precision not in PRECISIONS:
        return f"{precision_name} must be one of {', '.join(PRECISIONS)}; got {precision!r}"
    return (
        f"{precision_name} {precision!r} is not available with {runtime_name} {runtime};"
        f" allowed: {', '.join(allowed)}"
    )


def half_precision_weights_problem(
    runtime: str, *, runtime_name: str = "runtime", setting_name: str = "half_precision_weights"
) -> str | None:
    """Why float16-stored weights cannot be used with `runtime`, or None when they can."""
    if runtime in HALF_PRECISION_WEIGHTS_RUNTIMES:
        return None
    return (
        f"{setting_name} (float16-stored weights) works only with {runtime_name}"
        f" {' or '.join(HALF_PRECISION_WEIGHTS_RUNTIMES)}; {runtime_name} {runtime} was asked"
    )
