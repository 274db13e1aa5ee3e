"""The provider's schema, as the engine receives it from GetSchema, checked in as tests/component/schema.json
so that every change to the component's API (an input, an output, a type, a description, the version)
shows in review. tests/component/test_examples.py compares the two and checks the examples against it.

Refresh it after changing the args or the outputs, and read its diff:

    python -m tests.component.schema_snapshot
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("schema.json")
REFRESH = "python -m tests.component.schema_snapshot"


def current_schema() -> dict[str, Any]:
    """The schema the provider serves (inferred in-process; tests/component/test_package.py shows it is
    the one the plugin serves over gRPC)."""
    from captioning.component.provider import provider_schema

    return provider_schema()


def render(schema: dict[str, Any]) -> str:
    """The snapshot's text: stable key order and indentation, so a diff shows only what changed."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(
        prog=REFRESH, description="Rewrite tests/component/schema.json from the provider."
    ).parse_args(argv)
    SNAPSHOT.write_text(render(current_schema()), encoding="utf-8")
    print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
