"""AWS errors as one line for logs and items: `Code: Message` of a ClientError, else type and text."""

from __future__ import annotations

from botocore.exceptions import ClientError


def describe_error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"
