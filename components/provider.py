"""The Pulumi component provider: CaptioningPipeline for every Pulumi language (`pulumi package add`).

The engine starts the plugin (PulumiPlugin.yaml, or `python -m captioning`), which prints its port and
answers GetSchema and Construct. The schema is inferred from CaptioningPipelineArgs and the component's
output annotations.
"""

from __future__ import annotations

import json
from importlib import metadata
from typing import Any

from pulumi.provider.experimental import component_provider_host
from pulumi.provider.experimental.component import ComponentProvider

from captioning.pipeline import PACKAGE_NAME, CaptioningPipeline

COMPONENTS = [CaptioningPipeline]


def package_version() -> str:
    """The installed distribution's version: the schema's and the generated SDKs'."""
    return metadata.version(PACKAGE_NAME)


def build_provider() -> ComponentProvider:
    """The provider the plugin serves, with its inferred schema."""
    return ComponentProvider(COMPONENTS, PACKAGE_NAME, version=package_version())


def provider_schema() -> dict[str, Any]:
    """The package schema, as the engine receives it from GetSchema."""
    return json.loads(build_provider().schema or "{}")


def serve() -> None:
    """Serve the components to the engine (it passes its address as the first argument)."""
    component_provider_host(COMPONENTS, PACKAGE_NAME, version=package_version())
