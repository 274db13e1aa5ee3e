"""python -m imagebuild (image | image-test | engine) ...: see imagebuild/__init__.py."""

from __future__ import annotations

import subprocess
import sys

COMMANDS = ("image", "image-test", "engine")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m imagebuild {{{' | '.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "image":
            from imagebuild.function_image import main as run
        elif command == "image-test":
            from imagebuild.image_test import main as run
        else:
            from imagebuild.docker_engine import main as run
        return run(rest)
    except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
