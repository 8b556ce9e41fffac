"""Teacher candidates side by side (issue 15): which ImageNet teacher and input size set the highest
ceiling for the student. EfficientNet-Lite0/1/2 x input sizes x both heads, on one subset of the
dataset, scored as ``bench.teacher`` scores its one teacher.

Made for the lent GPU machine (PyTorch, no TensorFlow, 64 MiB per call), in three steps:

    python -m bench.teacher_sweep pack --teachers efficientnet-lite1 efficientnet-lite2 --out .sweep
    python -m bench.teacher_sweep measure --pack .sweep --backend torch --out $OUT/sweep-gpu.json   # on the GPU
    python -m bench.teacher_sweep measure --backend tflite --teachers efficientnet-lite0 --out sweep-cpu.json
    python -m bench.teacher_sweep render sweep-gpu.json sweep-cpu.json    # bench/results/teacher-sweep.md/.json

``pack`` copies every office photo and a fixed per-class sample of the non-office photos (the
same files for every teacher), and the teachers' weights as float16 (half the bytes: the call's
limit). ``measure`` computes pooled features of both views (``training.teacher.views``) with the
``torch`` backend (EfficientNet-Lite from ``training.teacher.lite_plan``, on the GPU if there is
one) or the ``tflite`` backend (the trainer's own teacher, ``load_teacher``, on CPU), fits the
heads as the trainer's cache does (``training.teacher.heads``: fitted on both views of the train
split, L2 by val log-loss) and scores view 0: 20-way office top-1/top-3 on val and test, AUROC of
1 - p(other) against unseen non-office classes and the share of them labelled at 90 % office
coverage. The port proof comes first: 1000-way top-1 on the ``imagenet-samples`` photos at each
teacher's published size.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.record import cpu_info, cpu_line, write_results
from bench.teacher import SAMPLES, imagenet_topk, sample_logits, topk, unseen_figures
from bundle.atomic import write_json_atomic
from training.teacher.heads import fit_linear_head, imagenet_log_probs, log_loss
from training.teacher.lite_plan import BN_EPS, MEAN_RGB, STD_RGB, block_plan
from training.teacher.registry import TEACHERS, load_teacher, weights_path
from training.teacher.views import photo_views

FILES = "files.json"
GOAL = "Goal of the student (issue 15): int8 office test top-1 >= 75 %, AUROC >= 0.92, <= 20 % labelled @90 %."


# ---- pack (here, with the dataset) ----


def pack(data: str, teachers: list[str], out: Path, per_class: dict[str, int], samples: Path) -> None:
    """``out``: photos/ (relative paths kept), files.json, weights/<teacher>.npz, samples/."""
    from training.data.dataset import load_dataset
    from training.teacher.torchfile import read_state_dict

    ds = load_dataset(data)
    files = [
        (str(p.relative_to(ds.root)), int(y), split) for split in ("train", "val", "test") for p, y in ds.items(split)
    ]
    c = len(ds.classes)
    for split, n in per_class.items():
        taken: dict[str, int] = {}
        for p, wnid in ds.others_items(split):
            if taken.get(wnid, 0) < n:  # the first n of each class, in the dataset's stable order
                taken[wnid] = taken.get(wnid, 0) + 1
                files.append((str(p.relative_to(ds.root)), c, split))
    shutil.rmtree(out, ignore_errors=True)
    for rel, _, _ in files:
        (out / "photos" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ds.root / rel, out / "photos" / rel)
    (out / "weights").mkdir()
    shutil.copytree(samples, out / "samples")
    for name in teachers:
        state = read_state_dict(weights_path(TEACHERS[name]))
        np.savez(out / "weights" / f"{name}.npz", **{k: v.astype(np.float16) for k, v in state.items()})
        # The trainer's own teacher on the sample photos: what the other backend's port must match.
        size = TEACHERS[name].published_size
        features, imagenet_logits, _ = tflite_features(name, size)
        logits = sample_logits(features, imagenet_logits, size, out / "samples")
        np.save(out / "weights" / f"{name}.reference.npy", logits)
    meta = {"dataset": ds.id, "classes": [x.wnid for x in ds.classes], "per_class": per_class, "files": files}
    (out / FILES).write_text(json.dumps(meta))
    print(f"packed {len(files)} photos and {len(teachers)} teachers into {out}")


# ---- measure (there) ----


def same_pad(x, kernel: int, stride: int, value: float = 0.0):
    """A PyTorch NCHW tensor padded as TensorFlow's "same" padding pads it (the extra pixel, if
    any, on the bottom and right), for a ``kernel`` x ``kernel`` window moved by ``stride``."""
    import torch.nn.functional as F

    pads = [max((math.ceil(n / stride) - 1) * stride + kernel - n, 0) for n in x.shape[-2:]]
    return F.pad(x, (pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2), value=value)


def torch_lite(name: str, weights: Path, device: str):
    """(features, fc weights [1280, 1000], fc bias) of EfficientNet-Lite in PyTorch: features takes
    a float NCHW tensor of 0..255 pixels on ``device``, any side, and returns pooled [B, 1280]
    features; TensorFlow's "same" padding and eps, gradients off."""
    import torch
    import torch.nn.functional as F

    with np.load(weights) as npz:
        w = {k: torch.from_numpy(npz[k].astype(np.float32)).to(device) for k in npz.files}
    spec = TEACHERS[name]

    def conv_bn(x, prefix, conv, bn, kernel, stride, groups=1, act=True):
        x = F.conv2d(same_pad(x, kernel, stride), w[prefix + conv + ".weight"], stride=stride, groups=groups)
        b = prefix + bn
        x = F.batch_norm(
            x, w[b + ".running_mean"], w[b + ".running_var"], w[b + ".weight"], w[b + ".bias"], False, 0.0, BN_EPS
        )
        return x.clamp(0, 6) if act else x

    @torch.no_grad()
    def features(x):
        x = conv_bn((x - MEAN_RGB) / STD_RGB, "", "_conv_stem", "_bn0", 3, 2)
        for j, (kernel, stride, expand, cin, cout) in enumerate(block_plan(spec.width, spec.depth)):
            p, y = f"_blocks.{j}.", x
            if expand != 1:
                y = conv_bn(y, p, "_expand_conv", "_bn0", 1, 1)
            y = conv_bn(y, p, "_depthwise_conv", "_bn1", kernel, stride, groups=y.shape[1])
            y = conv_bn(y, p, "_project_conv", "_bn2", 1, 1, act=False)
            x = x + y if stride == 1 and cin == cout else y
        return conv_bn(x, "", "_conv_head", "_bn1", 1, 1).mean((2, 3))

    return features, w["_fc.weight"].T, w["_fc.bias"]


def torch_features(name: str, weights: Path, size: int):
    """(features, ImageNet logits of features, device); features: uint8 [N, S, S, 3] -> float32
    [N, 1280] at any S (the size is the photos'), ``torch_lite`` on the GPU if there is one,
    float32 without TF32 (the port is judged against the float CPU teacher)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lite, fc_w, fc_b = torch_lite(name, weights, device)

    def forward(images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), 256):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + 256])).to(device).permute(0, 3, 1, 2).float()
            out.append(lite(x).cpu().numpy())
        return np.concatenate(out)

    fc_w, fc_b = fc_w.cpu().numpy(), fc_b.cpu().numpy()
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    return forward, lambda f: f @ fc_w + fc_b, f"{where} (PyTorch {torch.__version__}, float32, weights float16)"


def tflite_features(name: str, size: int):
    teacher = load_teacher(name, size)
    return teacher.features, teacher.imagenet_logits, "CPU (float TFLite: the trainer's own teacher)"


def views_of(root: Path, paths: list[str], size: int) -> np.ndarray:
    with ThreadPoolExecutor() as pool:
        return np.stack(list(pool.map(lambda p: photo_views(root / p, size), paths)))


def port_proof(logits: np.ndarray, reference: np.ndarray, name: str, samples: Path) -> dict:
    """1000-way top-1/top-5 of the sample photos, and how far the logits are from the trainer's
    teacher's (``reference``, computed by ``pack``)."""
    return {
        "photos": len(logits),
        "input_size": TEACHERS[name].published_size,
        **imagenet_topk(logits, samples),
        "max_abs_logit_diff_vs_trainer": round(float(np.abs(logits - reference).max()), 4),
        "top1_agreement_vs_trainer": round(float((logits.argmax(1) == reference.argmax(1)).mean()), 4),
    }


def score(lp: np.ndarray, labels: np.ndarray, splits: np.ndarray, c: int) -> dict:
    """Figures of view-0 log-probs [N, K] over the packed files."""
    office = labels < c
    out = {"val_log_loss": round(log_loss(lp[splits == "val"], labels[splits == "val"]), 4)}
    for split in ("val", "test"):
        m = office & (splits == split)
        out[f"office_{split}"] = {"top1": topk(lp[m, :c], labels[m], 1), "top3": topk(lp[m, :c], labels[m], 3)}
    known = 1 - np.exp(lp[office & (splits == "test"), c])
    unseen = 1 - np.exp(lp[~office & (splits == "test"), c])
    out["auroc_unseen"], out["labelled_at_90"] = unseen_figures(known, unseen)
    return out


def measure(pack_dir: Path, backend: str, teachers: list[str], sizes: list[int], out: Path) -> None:
    """Writes ``out`` after every size, so a call cut short still returns what it measured."""
    meta = json.loads((pack_dir / FILES).read_text())
    paths = [f[0] for f in meta["files"]]
    labels, splits = np.array([f[1] for f in meta["files"]]), np.array([f[2] for f in meta["files"]])
    c, root = len(meta["classes"]), pack_dir / "photos"
    counts = {
        s: {"office": int(((labels < c) & (splits == s)).sum()), "others": int(((labels == c) & (splits == s)).sum())}
        for s in ("train", "val", "test")
    }
    rows, proofs = [], {}
    for size in sizes:
        start = time.monotonic()
        x = views_of(root, paths, size)  # [N, 2, S, S, 3], shared by every teacher at this size
        decode_s = time.monotonic() - start
        for name in teachers:
            if backend == "torch":
                features, imagenet_logits, device = torch_features(name, pack_dir / "weights" / f"{name}.npz", size)
            else:
                features, imagenet_logits, device = tflite_features(name, size)
            if name not in proofs:  # the tflite teacher is built for one size: the proof needs its own
                published = TEACHERS[name].published_size
                proof_features = features if backend == "torch" else tflite_features(name, published)[0]
                logits = sample_logits(proof_features, imagenet_logits, published, pack_dir / "samples")
                reference = np.load(pack_dir / "weights" / f"{name}.reference.npy")
                proofs[name] = port_proof(logits, reference, name, pack_dir / "samples")
                print(f"{name} port proof: {proofs[name]}", flush=True)
            features(x[:64, 0])  # warm-up: kernels chosen, model converted
            start = time.monotonic()
            feats = features(x.reshape(-1, size, size, 3)).reshape(len(x), 2, -1)
            rate = 2 * len(x) / (time.monotonic() - start)
            flat, train = feats.reshape(-1, feats.shape[-1]), np.repeat(splits == "train", 2)
            val = splits == "val"
            heads = {"imagenet": imagenet_log_probs(imagenet_logits(feats[:, 0]), meta["classes"])}
            fitted, _ = fit_linear_head(
                flat[train], np.repeat(labels, 2)[train], feats[val, 0], labels[val], k=c + 1, progress=lambda _: None
            )
            heads["fitted"] = fitted.log_probs(feats[:, 0])
            for head, lp in heads.items():
                row = {"teacher": name, "input_size": size, "head": head, **score(lp, labels, splits, c)}
                row["l2"] = fitted.l2 if head == "fitted" else None
                row["images_per_s"], row["device"] = round(rate, 1), device
                print(json.dumps(row), flush=True)
                rows.append(row)
        print(f"size {size}: decoding {decode_s:.0f} s", flush=True)
        result = {
            "dataset": meta["dataset"],
            "backend": backend,
            "photos": counts,
            "per_class": meta["per_class"],
            "proofs": proofs,
            "rows": rows,
            "cpu": cpu_info(),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, result)


# ---- render (here) ----


def render(parts: list[dict]) -> str:
    p0 = parts[0]

    def split_counts(kind: str) -> str:
        return " / ".join(str(p0["photos"][split][kind]) for split in ("train", "val", "test"))

    lines = [
        "# Teacher candidates: EfficientNet-Lite0/1/2 x input size x head (issue 15)",
        "",
        f"Dataset `{p0['dataset']}`, one fixed subset for every row: every office photo ({split_counts('office')} "
        f"train / val / test) and the first {' / '.join(str(n) for n in p0['per_class'].values())} non-office "
        f"photos of each class ({split_counts('others')}; train-side classes for train and val, unseen "
        "classes for test). The 64 px photos are upsampled to the input size; view 0 is scored, and the "
        "fitted head is fitted on both views of train, L2 by val log-loss, as the trainer's cache does. "
        "images/s: both views' features on the row's device during the run (other jobs on it slow it down).",
        "",
    ]
    for part in parts:
        devices = sorted({r["device"] for r in part["rows"]})
        lines.append(f"- `{part['backend']}` rows: {', '.join(devices)}; {cpu_line(part['cpu'])}.")
    lines += ["", "## Port proof: 1000-way on the full-size `imagenet-samples` photos", ""]
    lines += [
        "| teacher | backend | input px | top-1 | top-5 | published ImageNet top-1 |",
        "|---|---|---|---|---|---|",
    ]
    for part in parts:
        for name, p in part["proofs"].items():
            lines.append(
                f"| {name} | {part['backend']} | {p['input_size']} | {p['top1']:.1%} | {p['top5']:.1%} | "
                f"{TEACHERS[name].published_top1:.1%} |"
            )
    lines += [
        "",
        "## Ceilings",
        "",
        "| teacher | input px | head | backend | val log-loss (21 outputs) | office val top-1 / top-3 | "
        "office test top-1 / top-3 | AUROC unseen non-office | non-office labelled @90 % | images/s (device) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted(
        ((r, part["backend"]) for part in parts for r in part["rows"]),
        key=lambda t: (t[0]["teacher"], t[0]["input_size"], t[0]["head"]),
    )
    for r, backend in rows:
        lines.append(
            f"| {r['teacher']} | {r['input_size']} | {r['head']} | {backend} | {r['val_log_loss']} | "
            f"{r['office_val']['top1']:.1%} / {r['office_val']['top3']:.1%} | "
            f"**{r['office_test']['top1']:.1%}** / {r['office_test']['top3']:.1%} | {r['auroc_unseen']} | "
            f"{r['labelled_at_90']:.1%} | {r['images_per_s']} |"
        )
    return "\n".join([*lines, "", GOAL, ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.teacher_sweep", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    a = sub.add_parser("pack", help="copy the subset of photos and the teachers' weights")
    a.add_argument("--data", default="data/office20", metavar="DIR")
    a.add_argument("--teachers", nargs="+", default=sorted(TEACHERS), choices=sorted(TEACHERS))
    a.add_argument("--out", type=Path, default=Path(".sweep"), metavar="DIR")
    a.add_argument(
        "--others",
        nargs=3,
        type=int,
        default=[40, 10, 20],
        metavar=("TRAIN", "VAL", "TEST"),
        help="non-office photos per class and split",
    )
    a.add_argument("--samples", type=Path, default=SAMPLES, metavar="DIR", help="imagenet-samples images folder")
    m = sub.add_parser("measure", help="features, heads and figures of each teacher and size")
    m.add_argument("--pack", type=Path, default=Path(".sweep"), metavar="DIR")
    m.add_argument("--backend", choices=("torch", "tflite"), default="torch")
    m.add_argument(
        "--teachers", nargs="+", default=None, choices=sorted(TEACHERS), help="default: every teacher packed"
    )
    m.add_argument("--sizes", nargs="+", type=int, default=[128, 160, 192, 224], metavar="PX")
    m.add_argument("--out", type=Path, required=True, metavar="FILE")
    r = sub.add_parser("render", help="one table of every measured part")
    r.add_argument("parts", nargs="+", type=Path, metavar="FILE")
    r.add_argument("--results", default="bench/results", metavar="DIR")
    a = p.parse_args(argv)
    if a.step == "pack":
        pack(a.data, a.teachers, a.out, dict(zip(("train", "val", "test"), a.others)), a.samples)
    elif a.step == "measure":
        teachers = a.teachers or sorted(f.stem for f in (a.pack / "weights").glob("*.npz"))
        measure(a.pack, a.backend, teachers, a.sizes, a.out)
    else:
        parts = [json.loads(f.read_text()) for f in a.parts]
        markdown = render(parts)
        write_results(a.results, "teacher-sweep", {"parts": parts}, markdown)
        print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
