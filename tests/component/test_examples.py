"""The component's API, as a checked-in schema, and the examples (examples/yaml, examples/typescript) against
it.

tests/component/schema.json is the schema the provider serves; the first test fails when the component's
API changes, so the change shows in review as a diff of that file (refresh it with
`python -m tests.component.schema_snapshot`). Neither example can run here (no Pulumi CLI, no AWS, no npm
install in `make test`): the others check that each uses the schema's type token and only input and output
names the schema has, that its stack settings feed the component, and that its README says it is not run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.component.schema_snapshot import REFRESH, SNAPSHOT, current_schema, render

REPO_ROOT = Path(__file__).resolve().parents[2]
YAML_DIR = REPO_ROOT / "examples" / "yaml"
TS_DIR = REPO_ROOT / "examples" / "typescript"
# The stack settings every example exposes, and the component inputs they feed.
SETTINGS = {"memory": "memorySize", "concurrency": "reservedConcurrency"}
# Stack settings outside the program's own namespace an example may set: the AWS provider's.
PROVIDER_SETTINGS = {"aws:region"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def token(schema: dict[str, Any]) -> str:
    (only,) = schema["resources"]
    return only


@pytest.fixture(scope="module")
def component(schema: dict[str, Any], token: str) -> dict[str, Any]:
    return schema["resources"][token]


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_checked_in_schema_is_the_one_the_provider_serves() -> None:
    snapshot = SNAPSHOT.relative_to(REPO_ROOT)
    assert render(current_schema()) == SNAPSHOT.read_text(encoding="utf-8"), (
        f"the component's API changed: run `{REFRESH}` and review the diff of {snapshot}"
    )


# --- examples/yaml ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def yaml_program() -> dict[str, Any]:
    return read_yaml(YAML_DIR / "Pulumi.yaml")


def test_yaml_uses_the_type_token_and_only_the_schemas_inputs_and_outputs(
    yaml_program, schema, token, component
):
    ours = {
        name: resource
        for name, resource in yaml_program["resources"].items()
        if resource["type"].startswith(f"{schema['name']}:")
    }
    assert [resource["type"] for resource in ours.values()] == [token]
    ((name, resource),) = ours.items()
    assert resource["properties"] and set(resource["properties"]) <= set(component["inputProperties"])
    read = re.findall(rf"\$\{{{name}\.(\w+)\}}", json.dumps(yaml_program["outputs"]))
    assert read and set(read) <= set(component["properties"])


def test_yaml_settings_are_declared_and_feed_the_component(yaml_program, token):
    config = yaml_program["config"]
    (properties,) = (r["properties"] for r in yaml_program["resources"].values() if r["type"] == token)
    for setting, component_input in SETTINGS.items():
        assert config[setting]["type"] == "integer", setting
        assert properties[component_input] == f"${{{setting}}}"


def test_yaml_stack_file_sets_exactly_the_declared_keys(yaml_program):
    settings = read_yaml(YAML_DIR / "Pulumi.dev.yaml")["config"]
    declared = {f"{yaml_program['name']}:{key}" for key in yaml_program["config"]}
    assert set(settings) - PROVIDER_SETTINGS == declared


# --- examples/typescript ---------------------------------------------------------------------------------


def node_package_name(schema: dict[str, Any]) -> str:
    """The npm name of the SDK `pulumi package add` generates: the schema's nodejs packageName, else
    `@<namespace>/<name>`, else `@pulumi/<name>` (pulumi-language-nodejs, getNodeJSPkgName)."""
    explicit = (schema.get("language") or {}).get("nodejs", {}).get("packageName")
    if explicit:
        return explicit
    return f"@{schema.get('namespace') or 'pulumi'}/{schema['name']}"


def sdk_directory(schema: dict[str, Any]) -> str:
    """Where `pulumi package add` writes the SDK: sdks/<name>, or sdks/<namespace>-<name>."""
    namespace = schema.get("namespace")
    return f"sdks/{namespace}-{schema['name']}" if namespace else f"sdks/{schema['name']}"


@pytest.fixture(scope="module")
def index_ts() -> str:
    return (TS_DIR / "index.ts").read_text(encoding="utf-8")


def test_typescript_uses_the_type_token_and_only_the_schemas_inputs_and_outputs(
    index_ts, schema, token, component
):
    """index.ts as written: the SDK imported as a namespace, one argument per line at four spaces."""
    module, class_name = token.split(":")[1:]
    (sdk,) = re.findall(
        rf'^import \* as (\w+) from "{re.escape(node_package_name(schema))}";$', index_ts, re.M
    )
    calls = re.findall(
        rf"^const (\w+) = new {sdk}\.(\w+)\(\"[\w-]+\", \{{\n(.*?)\n\}}\);$", index_ts, re.M | re.S
    )
    assert [called for _, called, _ in calls] == [class_name] and module == "index"
    ((variable, _, arguments),) = calls
    passed = re.findall(r"^    (\w+):", arguments, re.M)
    assert passed and set(passed) <= set(component["inputProperties"])
    read = re.findall(rf"\b{variable}\.(\w+)", index_ts)
    assert read and set(read) <= set(component["properties"])


def test_typescript_settings_are_read_from_config_and_feed_the_component(index_ts):
    for setting, component_input in SETTINGS.items():
        assert re.search(rf'^const {setting} = config\.getNumber\("{setting}"\)', index_ts, re.M), setting
        assert re.search(rf"^    {component_input}: {setting},$", index_ts, re.M), component_input


def test_typescript_stack_file_sets_only_what_the_program_reads(index_ts):
    project = read_yaml(TS_DIR / "Pulumi.yaml")["name"]
    settings = read_yaml(TS_DIR / "Pulumi.dev.yaml")["config"]
    reads = {f"{project}:{key}" for key in re.findall(r'config\.\w+\("([\w-]+)"\)', index_ts)}
    assert set(settings) - PROVIDER_SETTINGS <= reads


def test_typescript_project_names_the_generated_sdk(schema):
    project = read_yaml(TS_DIR / "Pulumi.yaml")
    runtime = project["runtime"]
    assert (runtime.get("name") if isinstance(runtime, dict) else runtime) == "nodejs"
    assert schema["name"] in project["packages"]
    manifest = json.loads((TS_DIR / "package.json").read_text(encoding="utf-8"))
    dependencies = manifest["dependencies"]
    # As `pulumi package add` links it: `npm pkg set dependencies.<name>=file:<sdk dir>`.
    assert dependencies[node_package_name(schema)] == f"file:{sdk_directory(schema)}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", dependencies["@pulumi/pulumi"]), "pin @pulumi/pulumi exactly"
    assert json.loads((TS_DIR / "tsconfig.json").read_text(encoding="utf-8"))["files"] == ["index.ts"]


# --- READMEs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", [YAML_DIR, TS_DIR], ids=["yaml", "typescript"])
def test_readme_gives_the_steps_and_says_it_is_not_run_in_ci(example: Path):
    readme = (example / "README.md").read_text(encoding="utf-8")
    flat = " ".join(readme.split())
    assert re.search(r"not run in this repository's CI", flat), "the README must say it is not run in CI"
    assert "tests/component/test_examples.py" in flat, "the README must say what is tested instead"
    for step in (
        "pulumi package add",
        "pulumi config set memory",
        "pulumi config set concurrency",
        "pulumi up",
    ):
        assert step in flat, step
    for need in ("Docker", "AWS credentials"):
        assert need in flat, need
