"""The demo model: its image spec (`shapes`), training (`train_demo_shapes`, `demo_training`,
`training_settings`), evaluation (`evaluate`), samples (`samples`) and the trained model itself
(`demo-shapes/`); and `tiny`, the tiny random models of the tests and the benchmark."""

from pathlib import Path

DEMO_MODEL_DIR = Path(__file__).resolve().parent / "demo-shapes"
"""The trained demo model; the default model of `python -m local` and of the evaluation."""
