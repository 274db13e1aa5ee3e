"""Where the pipeline is: from flags, from a running `python -m local serve`, or from the Pulumi stack.

Flags win over everything; `--local` reads the state file serve writes (ops/serve_state.py); else, if
the Pulumi CLI is installed, `pulumi stack output --json` of the selected (or `--stack`) stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field, fields, replace
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from captioning.component.pipeline import STACK_OUTPUT_NAMES
from captioning.component.settings import DEFAULT_IMAGE_SUFFIXES
from ops import serve_state
from ops.aws import MOTO_CLIENT_CREDENTIALS

PULUMI_TIMEOUT_S = 120
QUEUE_TRIGGERS = ("queue", "eventbridge")
"""Triggers whose uploads reach the function through the upload queue (backfill sends there)."""

# Component output -> Locations field; keyed by the stack output's name (camelCase, as __main__.py
# exports it). An output the component no longer has fails here, at import, not on a deployed stack.
STACK_OUTPUTS = {
    STACK_OUTPUT_NAMES[output]: name
    for output, name in {
        "bucket_name": "bucket",
        "table_name": "table",
        "queue_url": "queue_url",
        "dead_letter_queue_url": "dead_letter_queue_url",
        "function_target_arn": "function_name",
        "alarm_topic_arn": "alarm_topic_arn",
        "key_prefix": "key_prefix",
        "key_suffixes": "key_suffixes",
    }.items()
}
FUNCTION_NAME_OUTPUT = STACK_OUTPUT_NAMES["function_name"]
"""Read when a stack exports no functionTargetArn: then S3 invokes the function itself."""


class LocateError(RuntimeError):
    """The pipeline's resources cannot be found; the message says what to pass."""


@dataclass(frozen=True)
class Locations:
    """Names and addresses of one pipeline's resources, and how to reach them."""

    bucket: str | None = None
    table: str | None = None
    queue_url: str | None = None
    """The upload queue: present in queue mode only."""
    dead_letter_queue_url: str | None = None
    function_name: str | None = None
    """Name or ARN of what S3 invokes (the `live` alias when there is one): direct mode."""
    alarm_topic_arn: str | None = None
    key_prefix: str = ""
    key_suffixes: tuple[str, ...] = DEFAULT_IMAGE_SUFFIXES
    endpoint_url: str | None = None
    region: str | None = None
    source: str = "flags"
    """Where these came from: flags, local serve (path), or pulumi stack output."""
    local: bool = False
    _clients: dict[str, BaseClient] = field(default_factory=dict, compare=False, repr=False)

    @property
    def mode(self) -> str:
        """ "queue" when the upload queue is known (queue and eventbridge triggers), else "direct"."""
        return "queue" if self.queue_url else "direct"

    def require(self, *names: str) -> None:
        missing = [name for name in names if not getattr(self, name)]
        if missing:
            flags = ", ".join("--" + name.replace("_", "-") for name in missing)
            pronoun = "it" if len(missing) == 1 else "them"
            raise LocateError(
                f"this command needs {flags}: pass {pronoun}, or --local for a running "
                "`python -m local serve`, or run inside the Pulumi project with the Pulumi CLI installed"
            )

    def client(self, service: str, *, max_attempts: int | None = None) -> BaseClient:
        """A boto3 client for the pipeline's endpoint and region (one per service and retry setting)."""
        cache_key = f"{service}:{max_attempts}"
        if cache_key not in self._clients:
            options: dict[str, Any] = {
                "config": Config(
                    retries={"mode": "standard", **({"max_attempts": max_attempts} if max_attempts else {})}
                )
            }
            if self.endpoint_url:
                options["endpoint_url"] = self.endpoint_url
            if self.region:
                options["region_name"] = self.region
            if self.local:
                options.update(MOTO_CLIENT_CREDENTIALS)
            self._clients[cache_key] = boto3.client(service, **options)
        return self._clients[cache_key]


FLAG_FIELDS = (
    "bucket",
    "table",
    "queue_url",
    "dead_letter_queue_url",
    "function_name",
    "alarm_topic_arn",
    "endpoint_url",
    "region",
)


def locate(
    flags: dict[str, Any], *, local: bool = False, stack: str | None = None, state_path: Any = None
) -> Locations:
    """Flags over the local serve state (with `local`) or over the Pulumi stack outputs."""
    given = {name: flags[name] for name in FLAG_FIELDS if flags.get(name)}
    if flags.get("key_prefix") is not None:
        given["key_prefix"] = flags["key_prefix"]
    if flags.get("key_suffixes"):
        given["key_suffixes"] = tuple(flags["key_suffixes"])
    if local:
        base = from_local_serve(state_path)
    elif _enough(given):
        base = Locations(source="flags")
    else:
        base = from_pulumi(stack)
    located = replace(base, **given)
    if not located.endpoint_url and os.environ.get("AWS_ENDPOINT_URL"):
        located = replace(located, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    return located


def _enough(given: dict[str, Any]) -> bool:
    """Flags name the bucket or the table: the user says where things are; don't ask Pulumi."""
    return bool(given.get("bucket") or given.get("table") or given.get("dead_letter_queue_url"))


def from_local_serve(state_path: Any = None) -> Locations:
    try:
        state = serve_state.read(state_path)
    except serve_state.ServeStateError as error:
        raise LocateError(str(error)) from None
    # eventbridge mode feeds the function from the same upload queue as queue mode.
    queue_url = state["queue_url"] if state.get("trigger", "queue") in QUEUE_TRIGGERS else None
    return Locations(
        bucket=state["bucket"],
        table=state["table"],
        queue_url=queue_url,
        dead_letter_queue_url=state["dead_letter_queue_url"],
        key_prefix=state.get("key_prefix") or "",
        key_suffixes=tuple(state.get("key_suffixes") or ()),
        endpoint_url=state["endpoint_url"],
        region=state["region"],
        source=f"local serve ({serve_state.path() if state_path is None else state_path})",
        local=True,
    )


def from_pulumi(stack: str | None = None) -> Locations:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise LocateError(
            "cannot tell where the pipeline is: no --bucket/--table/... flags, no --local, and the "
            "Pulumi CLI is not installed (it would answer `pulumi stack output --json`). Pass the "
            "locations as flags (see --help), or --local for a running `python -m local serve`."
        )
    command = [pulumi, "stack", "output", "--json", *(["--stack", stack] if stack else [])]
    try:
        result = subprocess.run(  # noqa: S603  the Pulumi CLI found on PATH, fixed arguments
            command, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LocateError(f"`{' '.join(command[1:])}` could not run: {error}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LocateError(
            f"`pulumi {' '.join(command[1:])}` failed: {detail[-1] if detail else 'no output'}; "
            "select a stack (`pulumi stack select`, or --stack NAME) or pass the locations as flags"
        )
    try:
        outputs = json.loads(result.stdout)
    except ValueError:
        raise LocateError("`pulumi stack output --json` did not print JSON") from None
    return locations_from_outputs(
        outputs, source=f"pulumi stack output{f' --stack {stack}' if stack else ''}"
    )


def locations_from_outputs(outputs: dict[str, Any], *, source: str) -> Locations:
    values: dict[str, Any] = {}
    for output, name in STACK_OUTPUTS.items():
        if outputs.get(output) is not None:
            values[name] = tuple(outputs[output]) if name == "key_suffixes" else outputs[output]
    if "function_name" not in values and outputs.get(FUNCTION_NAME_OUTPUT):
        values["function_name"] = outputs[FUNCTION_NAME_OUTPUT]
    if not values.get("bucket"):
        raise LocateError(
            f"{source} has no {STACK_OUTPUT_NAMES['bucket_name']}: is this the captioning project's"
            " stack, deployed?"
        )
    return Locations(source=source, **values)


def describe(locations: Locations) -> dict[str, Any]:
    """The locations as plain data (for --json and for error messages)."""
    return {f.name: getattr(locations, f.name) for f in fields(locations) if not f.name.startswith("_")}
