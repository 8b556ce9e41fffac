"""Step 5: golden vectors, real test photos with the exact input tensor and int8 output they give.

    from export.golden import write_golden
    entries = write_golden(staging, test_items, spec, int8_model, n=5)
    # staging/golden/n03085013_12.jpg         the photo, byte-identical to the dataset file (.jpeg -> .jpg)
    # staging/golden/n03085013_12.input.bin   the uint8 input tensor (S*S*3 bytes, HWC, RGB)
    # entries: [{"image", "input", "input_sha256", "output": [uint8...], "top1", "label"}]

Any consumer (server, phone page) decodes the .jpg with its own code and must reproduce the
.input.bin bytes and, running the bundle's model.tflite, the output vector: that proves its
preprocessing and inference match the reference (bundle.images + bundle.preprocess).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from bundle.litert import LiteRTModel
from bundle.preprocess import PreprocessSpec
from export.inputs import pixels_of

GOLDEN_DIR = "golden"


def pick_golden(items: list[tuple[Path, int]], n: int) -> list[tuple[Path, int]]:
    """The first test image of classes 0, 1, 2, ... (so the vectors cover different classes)."""
    first = {}
    for path, label in items:
        first.setdefault(label, (path, label))
    chosen = [first[label] for label in sorted(first)][:n]
    rest = [item for item in items if item not in chosen]
    return chosen + rest[: n - len(chosen)]


def write_golden(
    staging: Path, items: list[tuple[Path, int]], spec: PreprocessSpec, model: LiteRTModel, n: int
) -> list[dict]:
    folder = staging / GOLDEN_DIR
    folder.mkdir()
    entries = []
    for path, label in pick_golden(items, n):
        name = Path(path).stem
        suffix = {".jpeg": ".jpg"}.get(Path(path).suffix.lower(), Path(path).suffix.lower())
        image = folder / f"{name}{suffix}"
        shutil.copyfile(path, image)
        x = model.input_tensor(pixels_of(image, spec))
        data = x.tobytes()
        (folder / f"{name}.input.bin").write_bytes(data)
        output = model.run(x)
        entries.append(
            {
                "image": f"{GOLDEN_DIR}/{image.name}",
                "input": f"{GOLDEN_DIR}/{name}.input.bin",
                "input_sha256": hashlib.sha256(data).hexdigest(),
                "output": [int(v) for v in output],
                "top1": int(output.argmax()),
                "label": int(label),
            }
        )
    return entries
