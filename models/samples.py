"""Write the demo samples: ``python -m models.samples`` -> samples/images/* and samples/captions.json.

The images are fixed spec draws chosen to span the spec (every colour and shape, both backgrounds,
PNG and JPEG, the smallest canvas, a phone photo stored rotated with an EXIF Orientation tag), with
file names a person would use (spaces, non-ASCII). captions.json holds what the demo model says.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from captioning.function.images import load_image
from models import DEMO_MODEL_DIR, shapes
from ops.arguments import help_description

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLES_DIR = REPOSITORY_ROOT / "samples"
DEFAULT_MODEL_DIR = DEMO_MODEL_DIR


@dataclass(frozen=True)
class Sample:
    file_name: str
    spec: shapes.ShapeSpec
    image_format: str
    quality: int | None = None
    exif_orientation: int | None = None


def _spec(
    width: int, height: int, background: str, colour: str, shape: str, left: int, top: int, side: int
) -> shapes.ShapeSpec:
    return shapes.ShapeSpec(
        width=width,
        height=height,
        background=background,
        colour=colour,
        shape=shape,
        left=left,
        top=top,
        side=side,
    )


SAMPLES: tuple[Sample, ...] = (
    Sample("red circle.png", _spec(320, 240, "white", "red", "circle", 110, 60, 110), "PNG"),
    Sample("blue-square.jpg", _spec(480, 400, "gray", "blue", "square", 40, 200, 150), "JPEG", quality=85),
    Sample("grünes Dreieck.png", _spec(256, 300, "white", "green", "triangle", 70, 90, 120), "PNG"),
    Sample(
        "yellow_triangle_on_gray.jpg",
        _spec(640, 480, "gray", "yellow", "triangle", 400, 50, 200),
        "JPEG",
        quality=90,
    ),
    Sample("tiny-purple-circle.png", _spec(96, 120, "white", "purple", "circle", 60, 84, 26), "PNG"),
    Sample(
        "pink square (wide).jpg", _spec(768, 576, "white", "pink", "square", 60, 300, 220), "JPEG", quality=80
    ),
    Sample("black-triangle.png", _spec(200, 260, "gray", "black", "triangle", 40, 60, 110), "PNG"),
    Sample(
        "phone photo – rotated.jpg",
        _spec(600, 450, "white", "green", "circle", 300, 120, 240),
        "JPEG",
        quality=92,
        exif_orientation=6,
    ),
)


def sample_bytes(sample: Sample) -> bytes:
    data = shapes.encode(shapes.draw(sample.spec), sample.image_format, sample.quality)
    if sample.exif_orientation is not None:
        data = shapes.to_exif_rotated_jpeg(data, sample.exif_orientation, quality=sample.quality or 90)
    return data


def write_samples(samples_dir: Path, model_dir: Path) -> dict[str, str]:
    """Write the images, caption them with the model, write captions.json; refuse a wrong caption."""
    from captioning.function.captioner import Captioner  # torch loads slowly; only this step needs it

    images_dir = samples_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    uploads = {sample.file_name: sample_bytes(sample) for sample in SAMPLES}
    for file_name, data in uploads.items():
        (images_dir / file_name).write_bytes(data)
    captioner = Captioner.load(model_dir)
    said = captioner.caption([load_image(data) for data in uploads.values()])
    captions = dict(zip(uploads, said, strict=True))
    wrong = {
        sample.file_name: captions[sample.file_name]
        for sample in SAMPLES
        if captions[sample.file_name] != sample.spec.caption
    }
    if wrong:
        raise RuntimeError(f"the model miscaptions samples {wrong}; retrain or choose other samples")
    (samples_dir / "captions.json").write_text(
        json.dumps(dict(sorted(captions.items())), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return captions


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.samples", description=help_description(__doc__))
    parser.add_argument(
        "--samples-dir",
        type=Path,
        default=DEFAULT_SAMPLES_DIR,
        help="where to write the sample images and captions.json (default: %(default)s)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="model that must caption every sample exactly; its captions go into captions.json "
        "(default: the demo model, %(default)s)",
    )
    arguments = parser.parse_args(argv)
    for file_name, caption in write_samples(arguments.samples_dir, arguments.model).items():
        print(f"{file_name}: {caption}")


if __name__ == "__main__":
    main()
