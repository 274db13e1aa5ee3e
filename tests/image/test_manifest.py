"""The image as a registry gets it: pushed to a registry on 127.0.0.1, its reference must resolve to a
single-platform image manifest (Lambda refuses an OCI image index)."""
# ruff: noqa: S101

from __future__ import annotations

import pytest

from imagebuild.registry import IMAGE_MANIFEST_TYPES, local_registry, manifest, push
from tests.image.conftest import record

pytestmark = pytest.mark.image


def test_pushed_image_is_a_single_platform_image_manifest(image_present: str) -> None:
    with local_registry() as registry:
        pushed = manifest(push(image_present, registry))
    record(image_present, manifest_media_type=pushed["mediaType"])
    assert pushed["mediaType"] in IMAGE_MANIFEST_TYPES, pushed["mediaType"]
    assert "manifests" not in pushed, "an index: Lambda would refuse it"
    assert pushed["config"]["mediaType"] in (
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    )
    assert pushed["layers"], "no layers"
