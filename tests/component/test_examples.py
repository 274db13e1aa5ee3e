"""The examples (examples/yaml, examples/typescript) against the schema the component provider serves.

Neither example can run here (no Pulumi CLI, no AWS, no npm install in `make test`), so these tests check
what can be checked without them: each program names only inputs and outputs the provider's inferred
schema has, with compatible literal types; its stack settings (`memory`, `concurrency`) are declared or
read where the program takes them; and each README says it is not run in CI. The TypeScript is read by
Python (comments, trailing commas and nested literals allowed). Every checker returns a list of problems;
the `*_catches_*` tests feed each one a broken copy of an example to show it reports it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
YAML_DIR = REPO_ROOT / "examples" / "yaml"
TS_DIR = REPO_ROOT / "examples" / "typescript"
COMPONENT = "CaptioningPipeline"
# Stack settings outside the program's own namespace that an example may set: the AWS provider's, which
# the component's resources use.
PROVIDER_NAMESPACES = {"aws"}
# The settings every example must expose, and the component inputs they feed.
SETTINGS = {"memory": "memorySize", "concurrency": "reservedConcurrency"}

Problems = list[str]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from captioning.component.provider import provider_schema

    return provider_schema()


@pytest.fixture(scope="module")
def token(schema: dict[str, Any]) -> str:
    return f"{schema['name']}:index:{COMPONENT}"


@pytest.fixture(scope="module")
def resource(schema: dict[str, Any], token: str) -> dict[str, Any]:
    assert token in schema["resources"], f"the schema declares no {token}: {sorted(schema['resources'])}"
    return schema["resources"][token]


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------
# Values against schema types (shared by both examples)


def resolve_ref(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A property spec with a local `$ref` ("#/types/<token>") replaced by the type it names."""
    ref = spec.get("$ref")
    if ref is None:
        return spec
    if not ref.startswith("#/types/"):
        raise AssertionError(f"the schema refers outside itself ({ref}); these tests cannot check it")
    return schema.get("types", {})[ref.removeprefix("#/types/")]


def value_problems(value: Any, spec: dict[str, Any], schema: dict[str, Any], where: str) -> Problems:
    """Why a literal `value` does not fit the schema type `spec` (empty when it does)."""
    spec = resolve_ref(schema, spec)
    kind = spec.get("type")
    if "enum" in spec:
        allowed = [member["value"] for member in spec["enum"]]
        return [] if value in allowed else [f"{where}: {value!r} is not one of {allowed}"]
    if kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list ({kind})"]
        return [
            p
            for i, item in enumerate(value)
            for p in value_problems(item, spec["items"], schema, f"{where}[{i}]")
        ]
    elif kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not a map ({kind})"]
        fields = spec.get("properties")
        problems = []
        for key, item in value.items():
            item_spec = fields.get(key) if fields is not None else spec.get("additionalProperties")
            if item_spec is None:
                problems.append(f"{where}.{key}: no such field in the schema")
            else:
                problems += value_problems(item, item_spec, schema, f"{where}.{key}")
        return problems
    else:
        raise AssertionError(f"{where}: the schema type {spec} is one these tests do not know")
    return [] if ok else [f"{where}: {value!r} does not fit the schema type {kind}"]


# Config types (Pulumi.yaml `config:`) and the schema types a value of each can be passed to.
CONFIG_TO_SCHEMA_TYPES = {
    "integer": {"integer", "number"},
    "string": {"string"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
}


# ---------------------------------------------------------------------------------------------------
# Pulumi YAML


INTERPOLATION = re.compile(r"(?<!\$)\$\{([^}]*)\}")


def interpolations(node: Any) -> Iterator[str]:
    """The expressions inside every `${...}` in a YAML node (`$${` is a literal, not one)."""
    if isinstance(node, str):
        yield from (match.strip() for match in INTERPOLATION.findall(node))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from interpolations(key)
            yield from interpolations(item)
    elif isinstance(node, list):
        for item in node:
            yield from interpolations(item)


def split_access(expression: str) -> tuple[str, str | None]:
    """`pipeline.bucketName` -> ("pipeline", "bucketName"); `memory` -> ("memory", None)."""
    match = re.fullmatch(r"([^.\[\s]+)(?:\.([A-Za-z_]\w*)|\[.*)?.*", expression)
    assert match, f"cannot read the expression ${{{expression}}}"
    return match.group(1), match.group(2)


def config_type(declaration: Any) -> str:
    """The type of a project config declaration (`type`, else inferred from `default` or a bare value)."""
    if isinstance(declaration, dict) and "type" in declaration:
        return declaration["type"]
    default = declaration.get("default") if isinstance(declaration, dict) else declaration
    for kind, python in (("boolean", bool), ("integer", int), ("string", str), ("array", list)):
        if isinstance(default, python):
            return kind
    return "object"


def yaml_component_resources(program: dict[str, Any], token: str) -> dict[str, dict[str, Any]]:
    return {
        name: body for name, body in (program.get("resources") or {}).items() if body.get("type") == token
    }


def yaml_program_problems(program: dict[str, Any], schema: dict[str, Any], token: str) -> Problems:
    """The YAML program: runtime, package, type token, inputs (names and types), outputs, variables."""
    problems: Problems = []
    runtime = program.get("runtime")
    if (runtime.get("name") if isinstance(runtime, dict) else runtime) != "yaml":
        problems.append(f"runtime is {runtime!r}, not yaml")
    if schema["name"] not in (program.get("packages") or {}):
        problems.append(f"packages: has no entry for the package {schema['name']!r}")
    resources = program.get("resources") or {}
    package_types = {name: body.get("type") for name, body in resources.items()}
    for name, kind in package_types.items():
        if str(kind).startswith(f"{schema['name']}:") and kind not in schema["resources"]:
            problems.append(f"resource {name}: the schema declares no type {kind}")
    components = yaml_component_resources(program, token)
    if len(components) != 1:
        problems.append(f"expected one resource of type {token}, found {sorted(components)}")

    config = program.get("config") or {}
    declared = set(config) | set(program.get("variables") or {}) | set(resources)
    resource_spec = schema["resources"].get(token, {})
    inputs = resource_spec.get("inputProperties", {})
    outputs = resource_spec.get("properties", {})

    for name, body in components.items():
        for key, value in (body.get("properties") or {}).items():
            where = f"{name}.properties.{key}"
            if key not in inputs:
                problems.append(f"{where}: not an input of {token}")
                continue
            problems += yaml_value_problems(value, inputs[key], schema, config, components, where)

    for expression in interpolations(program):
        root, attribute = split_access(expression)
        if root not in declared:
            problems.append(f"${{{expression}}}: {root!r} is not declared (config, variables or resources)")
        elif root in components and attribute not in outputs:
            problems.append(f"${{{expression}}}: {attribute!r} is not an output of {token}")
    return problems


def yaml_value_problems(
    value: Any,
    spec: dict[str, Any],
    schema: dict[str, Any],
    config: dict[str, Any],
    components: dict[str, Any],
    where: str,
) -> Problems:
    """A property value: a lone `${config}` must be of a matching config type, any literal must fit."""
    if isinstance(value, dict) and any(str(key).startswith("fn::") for key in value):
        return []  # a built-in function's result: its type is only known when it runs
    if isinstance(value, str):
        found = INTERPOLATION.findall(value)
        if found and INTERPOLATION.fullmatch(value):
            root, _ = split_access(found[0].strip())
            if root in config:
                wanted = resolve_ref(schema, spec).get("type")
                have = config_type(config[root])
                if wanted not in CONFIG_TO_SCHEMA_TYPES[have]:
                    return [f"{where}: config {root!r} is {have}, the input is {wanted}"]
                return []
            if root in components and spec.get("plain"):
                return [f"{where}: a plain input cannot take another resource's output"]
            return []
        if found:  # text with interpolations inside is a string
            return value_problems("text", spec, schema, where)
    return value_problems(value, spec, schema, where)


def stack_problems(
    settings: dict[str, Any], project: str, declared: dict[str, str], needs_every_key: bool = True
) -> Problems:
    """A stack settings file: the project's keys are exactly `declared` (key -> type), values fit."""
    problems: Problems = []
    seen = set()
    for full_key, value in (settings.get("config") or {}).items():
        namespace, _, key = full_key.partition(":")
        if namespace != project:
            if namespace not in PROVIDER_NAMESPACES:
                problems.append(
                    f"{full_key}: neither {project}: nor a provider's ({sorted(PROVIDER_NAMESPACES)})"
                )
            continue
        seen.add(key)
        if key not in declared:
            problems.append(f"{full_key}: the program declares no {key!r}")
        elif declared[key] == "integer" and not re.fullmatch(r"-?\d+", str(value)):
            problems.append(f"{full_key}: {value!r} is not an integer")
    if needs_every_key and seen != set(declared):
        problems.append(f"the stack sets {sorted(seen)}, the program declares {sorted(declared)}")
    return problems


@pytest.fixture(scope="module")
def yaml_program() -> dict[str, Any]:
    return read_yaml(YAML_DIR / "Pulumi.yaml")


def yaml_declared_config(program: dict[str, Any]) -> dict[str, str]:
    return {key: config_type(declaration) for key, declaration in (program.get("config") or {}).items()}


def test_yaml_program_uses_the_schema_token_inputs_and_outputs(yaml_program, schema, token, resource):
    assert yaml_program_problems(yaml_program, schema, token) == []
    # Not vacuous: the component is there, with properties, and its outputs are read.
    (component,) = yaml_component_resources(yaml_program, token).values()
    assert component["properties"]
    read = {split_access(e)[1] for e in interpolations(yaml_program.get("outputs")) if split_access(e)[1]}
    assert read and read <= set(resource["properties"])


def test_yaml_settings_are_declared_and_feed_the_component(yaml_program, token):
    config = yaml_program["config"]
    (component,) = yaml_component_resources(yaml_program, token).values()
    for setting, component_input in SETTINGS.items():
        assert config_type(config[setting]) == "integer", setting
        assert component["properties"][component_input] == f"${{{setting}}}"
    assert 128 <= config["memory"]["default"] <= 10240
    assert config["concurrency"]["default"] >= 1


def test_yaml_stack_file_sets_exactly_the_declared_keys(yaml_program):
    settings = read_yaml(YAML_DIR / "Pulumi.dev.yaml")
    declared = yaml_declared_config(yaml_program)
    assert stack_problems(settings, yaml_program["name"], declared) == []


def test_yaml_checker_catches_a_broken_program(yaml_program, schema, token):
    text = (YAML_DIR / "Pulumi.yaml").read_text(encoding="utf-8")
    breaks = {
        "unknown input": ("memorySize:", "memorySizeMb:"),
        "input of the wrong type": ("logRetentionDays: 7", 'logRetentionDays: "seven"'),
        "list item of the wrong type": ("- .png", "- 3"),
        "unknown output": ("${pipeline.tableName}", "${pipeline.tableArn}"),
        "undeclared variable": ("${concurrency}", "${concurency}"),
        "wrong type token": (f"type: {token}", f"type: {schema['name']}:index:CaptionPipeline"),
    }
    for label, (old, new) in breaks.items():
        assert old in text, label
        broken = yaml.safe_load(text.replace(old, new, 1))
        assert yaml_program_problems(broken, schema, token), f"{label} was not reported"
    stack = {"config": {"captioning-yaml:memory": 2048, "captioning-yaml:memmory": 1}}
    assert stack_problems(stack, "captioning-yaml", yaml_declared_config(yaml_program))


# ---------------------------------------------------------------------------------------------------
# TypeScript, read by Python


def strip_comments(source: str) -> str:
    """The source without // and /* */ comments; strings and template literals kept as they are."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        char, pair = source[i], source[i : i + 2]
        if pair == "//":
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif pair == "/*":
            end = source.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif char in "\"'`":
            end = string_end(source, i)
            out.append(source[i:end])
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)


def string_end(source: str, start: int) -> int:
    """The index just past the string literal that opens at `start`."""
    quote, i = source[start], start + 1
    while i < len(source):
        if source[i] == "\\":
            i += 2
            continue
        if source[i] == quote:
            return i + 1
        i += 1
    raise AssertionError(f"unterminated string literal at {start}")


OPENERS, CLOSERS = "([{", ")]}"


def balanced_end(source: str, start: int) -> int:
    """The index just past the bracket that closes the one opening at `start`."""
    depth, i = 0, start
    while i < len(source):
        char = source[i]
        if char in "\"'`":
            i = string_end(source, i)
            continue
        if char in OPENERS:
            depth += 1
        elif char in CLOSERS:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise AssertionError(f"unbalanced bracket at {start}")


def split_top_level(inner: str) -> list[str]:
    """`inner` split at commas outside brackets and strings; empty pieces (trailing commas) dropped."""
    pieces, depth, current, i = [], 0, [], 0
    while i < len(inner):
        char = inner[i]
        if char in "\"'`":
            end = string_end(inner, i)
            current.append(inner[i:end])
            i = end
            continue
        if char in OPENERS:
            depth += 1
        elif char in CLOSERS:
            depth -= 1
        if char == "," and depth == 0:
            pieces.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    pieces.append("".join(current).strip())
    return [piece for piece in pieces if piece]


def object_entries(literal: str) -> dict[str, str]:
    """An object literal's top-level `key: value` pairs (value as source text); shorthand `key` allowed."""
    literal = literal.strip()
    assert literal.startswith("{") and literal.endswith("}"), f"not an object literal: {literal[:40]}"
    entries = {}
    for piece in split_top_level(literal[1:-1]):
        if piece.startswith("..."):
            raise AssertionError(f"a spread ({piece}) hides which properties are passed")
        match = re.fullmatch(r"""(?:(["'])(.+?)\1|([A-Za-z_$][\w$]*))\s*(?::\s*(.*))?""", piece, re.DOTALL)
        assert match, f"cannot read the object entry {piece!r}"
        key = match.group(2) or match.group(3)
        entries[key] = (match.group(4) or key).strip()
    return entries


UNKNOWN = object()


def ts_literal(text: str) -> Any:
    """A TypeScript literal (number, string, boolean, array or object of them) as a Python value;
    UNKNOWN for anything computed (identifiers, calls, template literals with `${}`)."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in "\"'" and string_end(text, 0) == len(text):
        return ast.literal_eval(text)  # a quoted string means the same in Python for what examples hold
    if text[:1] == "`" and "${" not in text and string_end(text, 0) == len(text):
        return text[1:-1]
    if text[:1] == "[" and balanced_end(text, 0) == len(text):
        items = [ts_literal(piece) for piece in split_top_level(text[1:-1])]
        return UNKNOWN if any(item is UNKNOWN for item in items) else items
    if text[:1] == "{" and balanced_end(text, 0) == len(text):
        fields = {key: ts_literal(value) for key, value in object_entries(text).items()}
        return UNKNOWN if any(value is UNKNOWN for value in fields.values()) else fields
    return UNKNOWN


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


# pulumi.Config getters (get/require + suffix) and the config type each reads.
GETTER_TYPES = {"": "string", "Secret": "string", "Number": "integer", "Boolean": "boolean"}


class TsProgram:
    """What the tests need from index.ts, found in its comment-free source."""

    def __init__(self, source: str) -> None:
        self.code = strip_comments(source)
        self.imports = dict(re.findall(r"""import\s+\*\s+as\s+(\w+)\s+from\s+["']([^"']+)["']""", self.code))
        construction = re.search(
            rf"(?:const|let|var)\s+(\w+)\s*=\s*new\s+(\w+)\s*\.\s*{COMPONENT}\s*\(", self.code
        )
        assert construction, f"no `const x = new <sdk>.{COMPONENT}(...)` in index.ts"
        self.variable, self.sdk_alias = construction.group(1), construction.group(2)
        open_at = construction.end() - 1
        arguments = split_top_level(self.code[open_at + 1 : balanced_end(self.code, open_at) - 1])
        assert len(arguments) >= 2, f"{COMPONENT} is given no arguments object"
        self.args = object_entries(arguments[1])
        self.outputs_read = re.findall(rf"(?<![\w$.]){self.variable}\s*\.\s*(\w+)", self.code)
        pulumi_alias = next((a for a, module in self.imports.items() if module == "@pulumi/pulumi"), None)
        self.config_objects = re.findall(
            rf"(\w+)\s*=\s*new\s+{pulumi_alias}\s*\.\s*Config\s*\(\s*\)", self.code
        )

    def config_reads(self) -> dict[str, str]:
        """Every key the program reads from its own project config, with the type its getter reads."""
        keys = {}
        for config in self.config_objects:
            pattern = rf"\b{config}\s*\.\s*(?:get|require)(\w*)\s*\(\s*[\"'`]([\w:-]+)[\"'`]"
            for getter, key in re.findall(pattern, self.code):
                keys[key] = GETTER_TYPES.get(getter, "object")
        return keys

    def config_key_of(self, expression: str) -> str | None:
        """The config key a value comes from: `cfg.getNumber("k")...` inline or via `const x = ...`."""
        declared = re.search(rf"(?:const|let|var)\s+{re.escape(expression)}\s*=\s*([^;]+);", self.code)
        if re.fullmatch(r"[A-Za-z_$][\w$]*", expression) and declared:
            expression = declared.group(1)
        for config in self.config_objects:
            read = re.match(
                rf"{config}\s*\.\s*(?:get|require)Number\s*\(\s*[\"'`]([\w-]+)[\"'`]\s*\)", expression
            )
            if read:
                return read.group(1)
        return None


def ts_program_problems(program: TsProgram, schema: dict[str, Any], token: str) -> Problems:
    """index.ts: the SDK import, inputs (names, literal types), outputs read, settings from config."""
    problems: Problems = []
    spec = schema["resources"][token]
    if program.imports.get(program.sdk_alias) != node_package_name(schema):
        problems.append(
            f"{program.sdk_alias} is imported from {program.imports.get(program.sdk_alias)!r}, "
            f"not the generated SDK {node_package_name(schema)!r}"
        )
    for key, text in program.args.items():
        if key not in spec["inputProperties"]:
            problems.append(f"args.{key}: not an input of {token}")
            continue
        value = ts_literal(text)
        if value is not UNKNOWN:
            problems += value_problems(value, spec["inputProperties"][key], schema, f"args.{key}")
    for name in program.outputs_read:
        if name not in spec["properties"]:
            problems.append(f"{program.variable}.{name}: not an output of {token}")
    if not program.outputs_read:
        problems.append(f"no output of {program.variable} is exported")
    for setting, component_input in SETTINGS.items():
        source = program.config_key_of(program.args.get(component_input, ""))
        if source != setting:
            problems.append(
                f"args.{component_input} does not come from config {setting!r} (found {source!r})"
            )
    return problems


@pytest.fixture(scope="module")
def ts_program() -> TsProgram:
    return TsProgram((TS_DIR / "index.ts").read_text(encoding="utf-8"))


def test_typescript_program_uses_schema_inputs_outputs_and_config(ts_program, schema, token):
    assert ts_program_problems(ts_program, schema, token) == []
    assert ts_program.args and ts_program.outputs_read  # not vacuous


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
    assert (TS_DIR / "tsconfig.json").is_file()
    assert json.loads((TS_DIR / "tsconfig.json").read_text(encoding="utf-8"))["files"] == ["index.ts"]


def test_typescript_stack_file_sets_only_what_the_program_reads(ts_program):
    project = read_yaml(TS_DIR / "Pulumi.yaml")
    settings = read_yaml(TS_DIR / "Pulumi.dev.yaml")
    reads = ts_program.config_reads()
    assert {setting: reads.get(setting) for setting in SETTINGS} == dict.fromkeys(SETTINGS, "integer")
    assert stack_problems(settings, project["name"], reads) == []


def test_typescript_checker_catches_a_broken_program(ts_program, schema, token):
    source = (TS_DIR / "index.ts").read_text(encoding="utf-8")
    breaks = {
        "unknown input": ("    memorySize: memory,", "    memorySizeMb: memory,"),
        "input of the wrong type": ("logRetentionDays: 7,", 'logRetentionDays: "7",'),
        "nested literal of the wrong type": (
            'tags: { example: "captioning-typescript" }',
            "tags: { example: 1 }",
        ),
        "unknown output": ("pipeline.tableName;", "pipeline.tableArn;"),
        "setting not from config": ("reservedConcurrency: concurrency,", "reservedConcurrency: 1,"),
        "setting from another key": ('getNumber("memory")', 'getNumber("memorySize")'),
        "another SDK": ('from "@pulumi/captioning"', 'from "@pulumi/captioning-sdk"'),
    }
    for label, (old, new) in breaks.items():
        assert old in source, label
        broken = TsProgram(source.replace(old, new, 1))
        assert ts_program_problems(broken, schema, token), f"{label} was not reported"
    # A commented-out property is not passed; a trailing comma and a comment inside are read.
    tolerant = TsProgram(source.replace("    trigger:", "    // unknownInput: 1,\n    /* x */ trigger:", 1))
    assert "unknownInput" not in tolerant.args and "trigger" in tolerant.args


# ---------------------------------------------------------------------------------------------------
# READMEs


@pytest.mark.parametrize("example", [YAML_DIR, TS_DIR], ids=["yaml", "typescript"])
def test_readme_gives_the_steps_and_says_it_is_not_run_in_ci(example: Path):
    readme = (example / "README.md").read_text(encoding="utf-8")
    flat = " ".join(readme.split())
    assert re.search(r"not run in this repository's CI", flat), "the README must say it is not run in CI"
    assert "tests/test_examples.py" in flat, "the README must say what is tested instead"
    for step in (
        "pulumi package add",
        "pulumi config set memory",
        "pulumi config set concurrency",
        "pulumi up",
    ):
        assert step in flat, step
    for need in ("Docker", "AWS credentials"):
        assert need in flat, need
