"""The one error type preparation raises for a user's mistake or an unsupported model."""

from __future__ import annotations


class PreparationRefused(Exception):
    """The model or the options cannot be prepared as asked; the message says why and what to do."""

    what: str | None = None
    """For an ONNX refusal, what the exporter cannot reproduce (the message's subject)."""


def refuse_onnx(what: str) -> PreparationRefused:
    """The exporter cannot reproduce `what`: say so, and that the torch runtime takes the model."""
    refusal = PreparationRefused(
        f"the ONNX exporter cannot reproduce this model: {what}. Set runtime to torch"
        " (`pulumi config set runtime torch`, or --runtime torch here)"
    )
    refusal.what = what
    return refusal
