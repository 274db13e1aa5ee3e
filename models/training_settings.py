"""The demo model's training settings: read by its command line (models/train_demo_shapes.py) before torch
is imported, and by the training (models/demo_training.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that decides the trained weights; change any of these and the model changes."""

    seed: int = 20240611
    examples: int = 12000
    conversion_share: float = 0.3
    supersample_share: float = 0.25
    steps: int = 2400
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    num_threads: int = 1
    data_workers: int = 2
