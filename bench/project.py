"""The project's pipeline: captioning.function.images.load_image + captioning.function.captioner.Captioner
with its defaults."""

from __future__ import annotations

from pathlib import Path


class ProjectPipeline:
    def __init__(self, model_dir: Path, precision: str = "fp32") -> None:
        from captioning.function.captioner import Captioner
        from captioning.function.images import load_image

        self._load_image = load_image
        self.captioner = Captioner.load(model_dir, precision=precision)

    def caption_jpeg(self, data: bytes) -> str:
        return self.captioner.caption([self._load_image(data)])[0]

    def caption_jpegs(self, blobs: list[bytes]) -> list[str]:
        """One queue-mode invocation: every image of the batch in one Captioner.caption call."""
        return self.captioner.caption([self._load_image(data) for data in blobs])
