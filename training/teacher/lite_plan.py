"""EfficientNet-Lite's shape, framework-free: the block plan and constants every port builds from.

The tf_keras port (``efficientnet_lite``) and the PyTorch one of the GPU teacher sweep
(``bench.teacher_sweep``) read the same plan, so the two compute one architecture.

    from training.teacher.lite_plan import block_plan
    block_plan(1.0, 1.1)   # Lite1: [(kernel, stride, expand, in, out), ...] one per MBConv block
"""

from __future__ import annotations

import math

BN_EPS = 1e-3
MEAN_RGB, STD_RGB = 127.0, 128.0
STEM, HEAD = 32, 1280
# (repeats, kernel, stride, expand ratio, input filters, output filters) of EfficientNet-B0/Lite0.
BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to a multiple of 8, never more than 10 % down."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def block_plan(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """One (kernel, stride, expand, in, out) per MBConv block, in order, after Lite's scaling."""
    plan = []
    for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(BLOCKS):
        fixed = i in (0, len(BLOCKS) - 1)  # Lite keeps the first and last stage's repeats
        repeats = repeats if fixed else int(math.ceil(depth * repeats))
        cin = STEM if i == 0 else round_filters(cin, width)
        cout = round_filters(cout, width)
        for r in range(repeats):
            plan.append((kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
    return plan
