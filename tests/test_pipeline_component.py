"""The component itself: its type token, and every resource it creates is its child."""

import pytest

from components import CaptioningPipeline, CaptioningPipelineArgs
from tests.pulumi_mocks import deploy

COMPONENT_TYPE = "captioning:index:CaptioningPipeline"

# Between them, every resource the component can create: both triggers, with and without an alias.
SHAPES = {
    "direct-provisioned": CaptioningPipelineArgs(
        trigger="direct", reserved_concurrency=2, provisioned_concurrency=1
    ),
    "queue-provisioned": CaptioningPipelineArgs(
        trigger="queue", reserved_concurrency=4, provisioned_concurrency=1
    ),
}


def qualified_type(urn: str) -> str:
    """`parent-type$type` part of a URN (`urn:pulumi:<stack>::<project>::<qualified type>::<name>`)."""
    return urn.split("::")[2]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_resource_is_a_child_of_the_component(shape):
    mocks, _ = deploy(lambda: CaptioningPipeline("test", SHAPES[shape]))
    (component,) = [r for r in mocks.registrations if r.typ == COMPONENT_TYPE]
    assert component.name == "test"
    children = [r for r in mocks.registrations if r is not component]
    assert len(children) >= 15
    # A resource created without parent=self would hang off the stack instead ("pulumi:pulumi:Stack$...").
    orphans = [
        (r.name, qualified_type(r.urn))
        for r in children
        if qualified_type(r.urn) != f"{COMPONENT_TYPE}${r.typ}"
    ]
    assert orphans == []
