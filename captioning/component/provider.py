"""The Pulumi component provider: CaptioningPipeline for every Pulumi language (`pulumi package add`).

The engine starts the plugin (this repository's root __main__.py, or `python -m captioning`) with its
address as the argument; the plugin prints its port and answers GetSchema and Construct. The schema is
inferred from CaptioningPipelineArgs and the component's output annotations.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from typing import Any

import pulumi
from pulumi.provider import main as serve_provider
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.provider.experimental.util import camel_case
from pulumi.provider.provider import ConstructResult
from pulumi.provider.server import ComponentInitError

from captioning.component.pipeline import PACKAGE_NAME, CaptioningPipeline
from captioning.component.settings import SETTING_NAMES
from captioning.component.validation import InvalidSettingError

COMPONENTS = [CaptioningPipeline]


class CaptioningProvider(ComponentProvider):
    """Pulumi's inferring component provider; a refused setting is named as other languages spell it."""

    def construct(
        self,
        name: str,
        resource_type: str,
        inputs: pulumi.Inputs,
        options: pulumi.ResourceOptions | None = None,
    ) -> ConstructResult:
        try:
            return super().construct(name, resource_type, inputs, options)
        except ComponentInitError as error:
            refused = error.inner
            if isinstance(refused, InvalidSettingError) and refused.setting in SETTING_NAMES:
                renamed = refused.renamed(camel_case(refused.setting), camel_case)
                raise ComponentInitError(renamed) from refused
            raise


def package_version() -> str:
    """The installed distribution's version: the schema's and the generated SDKs'."""
    return metadata.version(PACKAGE_NAME)


def build_provider() -> CaptioningProvider:
    """The provider the plugin serves, with its inferred schema."""
    return CaptioningProvider(COMPONENTS, PACKAGE_NAME, version=package_version())


def provider_schema() -> dict[str, Any]:
    """The package schema, as the engine receives it from GetSchema."""
    return json.loads(build_provider().schema or "{}")


def running_as_plugin() -> bool:
    """Whether the engine started this process as the package's plugin rather than as a Pulumi program
    (a program runs with the engine's resource monitor configured; a plugin is handed the address)."""
    return pulumi.runtime.settings.get_monitor() is None


def serve() -> None:
    """Serve the component to the engine, whose address is the first argument; prints the port."""
    serve_provider(build_provider(), sys.argv[1:])
