"""Build-time code never reaches the function image: its final stage copies the prepared model, the
compiled libraries and, from the build context, the package's front door, the contract and the function,
nothing else. (That the function imports no build-time code is .importlinter's, `make lint`.)"""

from __future__ import annotations

import shlex

from captioning.contract import constants
from tests.unit.test_dockerfile import DOCKERFILE, REPO_ROOT, parse_dockerfile

FROM_THE_BUILD_CONTEXT = ["captioning/__init__.py", "captioning/contract/*.py", "captioning/function/*.py"]
FROM_THE_BUILD_STAGES = [
    f"--from=model {constants.MODEL_DIR_IN_IMAGE}",
    "--from=libraries /opt/libraries",
]


def final_stage_sources() -> list[str]:
    """What each COPY or ADD of the final stage brings in: its options and sources (no destination)."""
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    return [
        " ".join(shlex.split(arguments)[:-1])
        for keyword, arguments in stages[-1].instructions
        if keyword in ("COPY", "ADD")
    ]


def test_the_final_stage_copies_the_model_the_libraries_the_front_door_the_contract_and_the_function() -> (
    None
):
    assert final_stage_sources() == FROM_THE_BUILD_STAGES + FROM_THE_BUILD_CONTEXT


def test_the_copied_globs_take_every_module_of_the_contract_and_the_function() -> None:
    """`*.py` is not recursive: the image would miss a subpackage of the contract or the function."""
    for package in ("contract", "function"):
        directory = REPO_ROOT / "captioning" / package
        nested = [path for path in directory.rglob("*.py") if path.parent != directory]
        assert nested == [], f"captioning/{package} has subpackages the image would miss"
