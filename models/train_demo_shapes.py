"""Train the demo captioning model on synthetic spec images: ``python -m models.train_demo_shapes``.

Rebuilds ``models/demo-shapes/`` deterministically (fixed seeds, fixed thread count). The training itself
lives in ``models/demo_training.py``, its settings in ``models/training_settings.py``; this module is its
command line, and imports torch only once the arguments are known good (so ``--help`` answers at once).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from models import DEMO_MODEL_DIR
from models.training_settings import TrainingSettings
from ops.arguments import help_description, positive_int

DEFAULT_OUTPUT_DIR = DEMO_MODEL_DIR


def main(argv: Sequence[str] | None = None) -> None:
    defaults = TrainingSettings()
    parser = argparse.ArgumentParser(
        prog="python -m models.train_demo_shapes", description=help_description(__doc__)
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="model directory to write (default: %(default)s)",
    )
    parser.add_argument(
        "--steps", type=positive_int, default=defaults.steps, help="optimiser steps (default %(default)s)"
    )
    parser.add_argument(
        "--examples",
        type=positive_int,
        default=defaults.examples,
        help="training images drawn (default %(default)s)",
    )
    parser.add_argument(
        "--data-workers",
        type=positive_int,
        default=defaults.data_workers,
        help="processes preparing the training images (default %(default)s)",
    )
    arguments = parser.parse_args(argv)

    from transformers.utils import logging as transformers_logging  # slow: only once the arguments are good

    from models.demo_training import train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    settings = TrainingSettings(
        steps=arguments.steps, examples=arguments.examples, data_workers=arguments.data_workers
    )
    train(settings, arguments.output)


if __name__ == "__main__":
    main()
