"""The original design's pipeline, as it was: full-size decode, one image per generate, float32.

Imports only torch, transformers and Pillow, so it also runs in the baseline virtualenv.
"""

from __future__ import annotations

import io
from pathlib import Path

BASELINE_NUM_BEAMS = 4
BASELINE_MAX_LENGTH = 16


class BaselineCaptioner:
    def __init__(self, model_dir: Path) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

        self.model = VisionEncoderDecoderModel.from_pretrained(str(model_dir))
        self.processor = AutoImageProcessor.from_pretrained(str(model_dir))
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def caption_jpeg(self, data: bytes) -> str:
        from PIL import Image

        image = Image.open(io.BytesIO(data)).convert("RGB")
        return self.caption_image(image)

    def caption_image(self, image) -> str:
        pixel_values = self.processor(images=[image], return_tensors="pt").pixel_values
        output_ids = self.model.generate(
            pixel_values, max_length=BASELINE_MAX_LENGTH, num_beams=BASELINE_NUM_BEAMS
        )
        return self.tokenizer.batch_decode(output_ids, skip_special_tokens=True)[0].strip()

    def caption_jpegs(self, blobs: list[bytes]) -> list[str]:
        """The original handler captioned object after object."""
        return [self.caption_jpeg(data) for data in blobs]
