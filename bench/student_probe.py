"""Recipe probe (issue 15): which distillation recipe lets the reduced AlexNet close on its teacher,
answered in minutes on the lent GPU instead of an hour per recipe on 2 CPU cores.

A PyTorch replica of the student (``training.model_shape``: the same layers, BatchNorm momentum and
eps, initialisers, L2, Adam, warm-up + cosine, label smoothing, augmentation and "other" draw as the
trainer's defaults in ``training.config``) is trained on a packed subset of the dataset
(``bench.teacher_sweep pack``: every office photo, a fixed sample of non-office ones) under
recipes that differ in their targets:

- ``none``: hard labels only (``--teacher none``);
- ``fixed``: the trainer's distillation: the teacher's probabilities of each photo and its mirror,
  computed once (``training.teacher.views``), mixed 0.3 label + 0.7 teacher;
- ``views``: ``--views`` augmented views of each photo drawn once, and the teacher's targets of
  each: what a per-view cache could hold; each step takes one of them;
- ``live``: "function matching" (Beyer et al. 2022, "Knowledge distillation: a good teacher is
  patient and consistent"): the teacher scores every augmented (and mixed) view the student sees.

The teacher is EfficientNet-Lite in PyTorch (``bench.teacher_sweep.torch_lite``) with the head fitted
as the trainer's cache fits it (``training.teacher.heads``). The figures guide the Keras trainer's
recipe; they are not the shipped model's (no pruning, no int8, a replica, a subset of non-office
photos).

    python -m bench.teacher_sweep pack --teachers efficientnet-lite0 --others 100 10 20 --out .probe
    (cd .probe && python -m zipfile -c photos.zip photos && rm -r photos samples)  # 22,700 files overflow a call
    python3 -m zipfile -e .probe/photos.zip .probe/                                  # on the GPU, then:
    python -m bench.student_probe prepare --pack .probe --work /tmp/probe --out $OUT/prepare.json  # on the GPU
    python -m bench.student_probe train --work /tmp/probe --targets live --epochs 150 --out $OUT/live.json
    python -m bench.student_probe render prepare.json live.json ...   # bench/results/student-probe.md/.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.record import cpu_info, write_results
from bench.teacher import unseen_figures
from bench.teacher_sweep import FILES, GOAL, same_pad, score, torch_lite
from bundle.atomic import write_json_atomic
from training.config import DataConfig, ModelConfig, OptimConfig, ScheduleConfig, TeacherConfig
from training.model_shape import BN_MOMENTUM, conv_channels, first_conv_geometry
from training.teacher.heads import fit_linear_head
from training.teacher.views import photo_views

PREPARED = "prepared.npz"
SPLITS = ("train", "val", "test")
TARGETS = ("none", "fixed", "views", "live")


@dataclasses.dataclass
class Recipe:
    targets: str = "fixed"
    views: int = 8
    epochs: int = ScheduleConfig().epochs
    mixup: float = 0.0
    seed: int = 0
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    teacher: TeacherConfig = dataclasses.field(default_factory=TeacherConfig)


def _device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---- prepare: photos, the teacher's head and its fixed targets, once for every recipe ----


def prepare(pack_dir: Path, work: Path, teacher_size: int, image_size: int, out: Path) -> None:
    import torch

    start = time.monotonic()
    meta = json.loads((pack_dir / FILES).read_text())
    paths = [f[0] for f in meta["files"]]
    labels = np.array([f[1] for f in meta["files"]])
    splits = np.array([SPLITS.index(f[2]) for f in meta["files"]])
    c, root = len(meta["classes"]), pack_dir / "photos"
    with ThreadPoolExecutor() as pool:
        images = np.stack(list(pool.map(lambda p: photo_views(root / p, image_size)[0], paths)))
        views = np.stack(list(pool.map(lambda p: photo_views(root / p, teacher_size), paths)))
    decoded_s = time.monotonic() - start
    (name,) = [f.stem for f in (pack_dir / "weights").glob("*.npz")]
    lite, _, _ = torch_lite(name, pack_dir / "weights" / f"{name}.npz", _device())
    flat = views.reshape(-1, *views.shape[2:])
    feats = np.concatenate(
        [
            lite(torch.from_numpy(flat[i : i + 512]).to(_device()).permute(0, 3, 1, 2).float()).cpu().numpy()
            for i in range(0, len(flat), 512)
        ]
    ).reshape(len(views), 2, -1)
    train, val = splits == 0, splits == 1
    head, _ = fit_linear_head(
        feats[train].reshape(-1, feats.shape[-1]),
        np.repeat(labels[train], 2),
        feats[val, 0],
        labels[val],
        k=c + 1,
        progress=lambda _: None,
    )
    logp = np.stack([head.log_probs(feats[:, v]) for v in range(2)], axis=1)  # [N, 2 views, c + 1]
    office_train = images[train & (labels < c)].reshape(-1, 3).astype(np.float64)
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pack_dir / "weights" / f"{name}.npz", work / "weights.npz")  # what "live" runs
    np.savez(
        work / PREPARED,
        images=images,
        labels=labels,
        splits=splits,
        logp=logp,
        head_mean=head.mean,
        head_scale=head.scale,
        head_weights=head.weights,
        head_bias=head.bias,
        mean=office_train.mean(0),
        std=office_train.std(0),
        classes=np.array(meta["classes"]),
        teacher=np.array([name, str(teacher_size)]),
    )
    figures = score(logp[:, 0], labels, np.array(SPLITS)[splits], c)
    result = {
        "dataset": meta["dataset"],
        "teacher": name,
        "teacher_size": teacher_size,
        "head_l2": head.l2,
        "photos": {
            s: {
                "office": int(((labels < c) & (splits == i)).sum()),
                "others": int(((labels == c) & (splits == i)).sum()),
            }
            for i, s in enumerate(SPLITS)
        },
        "per_class": meta["per_class"],
        "teacher_figures": figures,
        "seconds": round(time.monotonic() - start, 1),
        "decode_seconds": round(decoded_s, 1),
        "device": _device_name(),
    }
    print(json.dumps(result), flush=True)
    write_json_atomic(out, result)


def _device_name() -> str:
    import torch

    where = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    return f"{where} (PyTorch {torch.__version__})"


# ---- train: one recipe ----


def build_student(outputs: int, cfg: ModelConfig, image_size: int):
    import torch.nn.functional as F
    from torch import nn

    kernel, stride = first_conv_geometry(image_size)
    ch = conv_channels(cfg.width)
    geometry = [
        (3, ch[0], kernel, stride),
        (ch[0], ch[1], 5, 1),
        (ch[1], ch[2], 3, 1),
        (ch[2], ch[3], 3, 1),
        (ch[3], ch[4], 3, 1),
    ]
    pooled_after = (0, 1, 4)
    side = math.ceil(image_size / stride)
    for _ in pooled_after:
        side = math.ceil(side / 2)

    class Student(nn.Module):
        def __init__(self):
            super().__init__()
            eps, momentum = 1e-3, 1 - BN_MOMENTUM  # Keras' BatchNormalization eps; torch counts momentum the other way
            self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, bias=False) for i, o, k, s in geometry)
            self.conv_bns = nn.ModuleList(nn.BatchNorm2d(o, eps=eps, momentum=momentum) for _, o, _, _ in geometry)
            self.fcs = nn.ModuleList(
                [
                    nn.Linear(ch[4] * side * side, cfg.fc_units, bias=False),
                    nn.Linear(cfg.fc_units, cfg.fc_units, bias=False),
                ]
            )
            self.fc_bns = nn.ModuleList(nn.BatchNorm1d(cfg.fc_units, eps=eps, momentum=momentum) for _ in range(2))
            self.logits = nn.Linear(cfg.fc_units, outputs)
            for m in [*self.convs, *self.fcs]:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # Keras' HeNormal
            nn.init.xavier_uniform_(self.logits.weight)
            nn.init.zeros_(self.logits.bias)

        def forward(self, x):
            for i, ((_, _, k, s), conv, bn) in enumerate(zip(geometry, self.convs, self.conv_bns)):
                x = F.relu(bn(conv(same_pad(x, k, s))))
                if i in pooled_after:
                    x = F.max_pool2d(same_pad(x, 3, 2, -math.inf), 3, 2)
            x = x.flatten(1)
            for fc, bn in zip(self.fcs, self.fc_bns):
                x = F.dropout(F.relu(bn(fc(x))), cfg.dropout, self.training)
            return self.logits(x)

        def l2(self):
            return sum((m.weight**2).sum() for m in [*self.convs, *self.fcs, self.logits])

    return Student()


def live_teacher(work: Path, prepared, dev: str):
    """The prepared teacher as a function of a float NCHW batch of the student's 0..255 pixels:
    upsampled to its input size, features, the fitted head; returns log-probabilities [B, c + 1]."""
    import torch
    import torch.nn.functional as F

    size = int(prepared["teacher"][1])
    lite, _, _ = torch_lite(str(prepared["teacher"][0]), work / "weights.npz", dev)
    mean, scale, w, b = (torch.from_numpy(prepared[f"head_{n}"]).to(dev) for n in ("mean", "scale", "weights", "bias"))

    def log_probs(x):
        up = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return torch.log_softmax(((lite(up) - mean) / scale) @ w + b, -1)

    return log_probs


def cached_views(images, teacher, recipe: Recipe, train):
    """``recipe.views`` augmented views of every train photo, drawn once, and the teacher's
    log-probabilities of each: what a cache of per-view targets holds. Views [V, N, 3, S, S] float16
    (other splits' rows left zero), log-probs [V, N, c + 1]."""
    import torch

    rows = torch.nonzero(train).flatten()
    out = torch.zeros((recipe.views, *images.shape), dtype=torch.float16, device=images.device)
    logp = None
    with torch.no_grad():
        for v in range(recipe.views):
            for chunk in rows.split(1024):
                x, _ = augment(images[chunk].float(), recipe.data)
                out[v, chunk] = x.half()
                lp = teacher(x)
                if logp is None:
                    logp = torch.zeros((recipe.views, len(images), lp.shape[-1]), device=images.device)
                logp[v, chunk] = lp
    return out, logp


def augment(x, cfg: DataConfig):
    """The trainer's augmentation (``training.pipeline.augment``) on a float NCHW batch of 0..255
    pixels: reflect-padded translation, flip, brightness, contrast, clipped. Returns (x, mirrored)."""
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    dev = x.device
    if cfg.translate > 0:
        pad = max(1, round(cfg.translate * h))
        padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        rows = torch.randint(0, 2 * pad + 1, (b, 1), device=dev) + torch.arange(h, device=dev)
        cols = torch.randint(0, 2 * pad + 1, (b, 1), device=dev) + torch.arange(w, device=dev)
        x = padded[torch.arange(b, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
        x = x.permute(0, 3, 1, 2)
    mirrored = torch.rand(b, device=dev) < 0.5 if cfg.flip else torch.zeros(b, dtype=torch.bool, device=dev)
    x = torch.where(mirrored[:, None, None, None], x.flip(3), x)
    if cfg.brightness > 0:
        x = x + (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * cfg.brightness * 255
    if cfg.contrast > 0:
        f = 1 - cfg.contrast + torch.rand(b, 1, 1, 1, device=dev) * 2 * cfg.contrast
        m = x.mean((2, 3), keepdim=True)
        x = (x - m) * f + m
    return x.clamp(0, 255), mirrored


def train(work: Path, recipe: Recipe, out: Path, evals: int = 40) -> None:
    """Writes ``out`` after every evaluation, so a call cut short still returns its history."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(recipe.seed)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    dev = _device()
    p = np.load(work / PREPARED)
    labels_np, splits, c = p["labels"], p["splits"], len(p["classes"])
    k = c + 1
    images = torch.from_numpy(p["images"]).to(dev).permute(0, 3, 1, 2).contiguous()  # uint8
    labels = torch.from_numpy(labels_np).to(dev)
    mean = torch.tensor(p["mean"], dtype=torch.float32, device=dev)[None, :, None, None]
    std = torch.tensor(p["std"], dtype=torch.float32, device=dev)[None, :, None, None]
    t = recipe.teacher
    office = labels < c

    def tempered(logp, drop_other):
        z = logp / t.temperature
        if t.drop_other:
            z = torch.where(drop_other[:, None] & (torch.arange(k, device=dev) == c), -math.inf, z)
        return torch.softmax(z, -1)

    fixed = torch.from_numpy(p["logp"]).to(dev)
    if recipe.targets in ("views", "live"):
        teacher = live_teacher(work, p, dev)
    if recipe.targets == "views":
        view_images, view_logp = cached_views(images, teacher, recipe, torch.from_numpy(splits == 0).to(dev))
    model = build_student(k, recipe.model, images.shape[-1]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.optim.lr, betas=(recipe.optim.momentum, 0.999), eps=1e-7)
    idx = {s: torch.nonzero(torch.from_numpy(splits == i)).flatten().to(dev) for i, s in enumerate(SPLITS)}
    office_train = idx["train"][office[idx["train"]]]
    others_train = idx["train"][~office[idx["train"]]]
    f = recipe.data.other_fraction
    n_others = min(len(others_train), round(len(office_train) * f / (1 - f)))
    batch = recipe.optim.batch_size
    steps_per_epoch = math.ceil((len(office_train) + n_others) / batch)
    total, warm = recipe.epochs * steps_per_epoch, round(recipe.schedule.warmup_epochs * steps_per_epoch)

    def lr_at(step):
        if step < warm:
            return recipe.optim.lr * step / warm
        return recipe.optim.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    @torch.no_grad()
    def evaluate():
        model.eval()
        out = {}
        probs = {}
        for split in ("val", "test"):
            i = idx[split]
            probs[split] = (
                torch.cat([torch.softmax(model((images[j].float() - mean) / std), -1) for j in i.split(2048)])
                .cpu()
                .numpy()
            )
        y = labels_np
        for split in ("val", "test"):
            i = idx[split].cpu().numpy()
            pr, yy = probs[split], y[i]
            o = yy < c
            top = np.argsort(-pr[o, :c], 1)
            out[f"office_{split}"] = {
                "top1": round(float((top[:, 0] == yy[o]).mean()), 4),
                "top3": round(float((top[:, :3] == yy[o, None]).any(1).mean()), 4),
            }
        i = idx["test"].cpu().numpy()
        pr, o = probs["test"], y[i] < c
        out["auroc_unseen"], out["labelled_at_90"] = unseen_figures(1 - pr[o, c], 1 - pr[~o, c])
        model.train()
        return out

    history, step, start = [], 0, time.monotonic()
    every = max(1, recipe.epochs // evals)
    for epoch in range(1, recipe.epochs + 1):
        order = torch.cat([office_train, others_train[torch.randperm(len(others_train), device=dev)[:n_others]]])
        order = order[torch.randperm(len(order), device=dev)]
        correct = seen = 0
        for b in order.split(batch):
            y = F.one_hot(labels[b], k).float()
            if recipe.targets == "views":  # one of the photo's cached views, and the teacher's target of it
                v = torch.randint(0, recipe.views, (len(b),), device=dev)
                x = view_images[v, b].float()
                y = (1 - t.weight) * y + t.weight * tempered(view_logp[v, b], office[b])
            else:
                x, mirrored = augment(images[b].float(), recipe.data)
            if recipe.targets == "fixed":
                y = (1 - t.weight) * y + t.weight * tempered(fixed[b, mirrored.long()], office[b])
            if recipe.mixup > 0:
                lam = float(np.random.default_rng([recipe.seed, step]).beta(recipe.mixup, recipe.mixup))
                x, y = lam * x + (1 - lam) * x.flip(0), lam * y + (1 - lam) * y.flip(0)
            if recipe.targets == "live":
                with torch.no_grad():
                    y = (1 - t.weight) * y + t.weight * tempered(
                        teacher(x), office[b] & office[b].flip(0) if recipe.mixup > 0 else office[b]
                    )
            y = y * (1 - recipe.optim.label_smoothing) + recipe.optim.label_smoothing / k
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            logits = model((x - mean) / std)
            loss = -(y * torch.log_softmax(logits, -1)).sum(1).mean() + recipe.model.weight_decay * model.l2()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            correct += (logits.argmax(1) == y.argmax(1)).sum()
            seen += len(b)
        if epoch % every == 0 or epoch == recipe.epochs:
            row = {
                "epoch": epoch,
                "train_agreement": round(float(correct) / seen, 4),
                **evaluate(),
                "seconds": round(time.monotonic() - start, 1),
            }
            history.append(row)
            print(json.dumps(row), flush=True)
            best = max(history, key=lambda r: r["office_val"]["top1"])
            write_json_atomic(
                out,
                {
                    "recipe": _recipe_dict(recipe),
                    "steps_per_epoch": steps_per_epoch,
                    "others_per_epoch": n_others,
                    "device": _device_name(),
                    "last": history[-1],
                    "best_val": best,
                    "history": history,
                },
            )


def _recipe_dict(r: Recipe) -> dict:
    d = dataclasses.asdict(r)
    return {
        "targets": d["targets"] + (f" x{d['views']}" if d["targets"] == "views" else ""),
        "epochs": d["epochs"],
        "mixup": d["mixup"],
        "seed": d["seed"],
        "distill_weight": d["teacher"]["weight"],
        "temperature": d["teacher"]["temperature"],
    }


# ---- render (here) ----


def render(prepared: dict, runs: list[dict]) -> str:
    tf = prepared["teacher_figures"]
    photos = prepared["photos"]
    lines = [
        "# Recipe probe: how close the reduced AlexNet gets to its teacher (issue 15)",
        "",
        f"Dataset `{prepared['dataset']}`: every office photo ({' / '.join(str(photos[s]['office']) for s in SPLITS)} "
        f"train / val / test) and the first {' / '.join(str(n) for n in prepared['per_class'].values())} non-office "
        f"photos of each class ({' / '.join(str(photos[s]['others']) for s in SPLITS)}). A PyTorch replica of the "
        "student with the trainer's defaults; no pruning, no int8. Device: "
        f"{prepared['device']}.",
        "",
        f"Teacher: {prepared['teacher']} at {prepared['teacher_size']} px, fitted head (L2 {prepared['head_l2']}): "
        f"office test top-1 {tf['office_test']['top1']:.1%}, top-3 {tf['office_test']['top3']:.1%}, AUROC "
        f"{tf['auroc_unseen']}, non-office labelled @90 % {tf['labelled_at_90']:.1%}.",
        "",
        "Targets: `none` hard labels; `fixed` the trainer's (the teacher on each photo and its mirror, once); "
        "`live` the teacher on every augmented (and mixed) view. Test figures at the last epoch, and at the "
        "epoch of best office val top-1 (what the trainer keeps). minutes: wall time on the GPU, which the "
        "recipes of one call share (run side by side).",
        "",
        "| targets | epochs | mixup | seed | test top-1 (last) | top-3 | AUROC | labelled @90 % | "
        "test top-1 (best val, epoch) | train agreement | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def order(run):
        kind, *views = run["recipe"]["targets"].split()
        return TARGETS.index(kind), int(views[0][1:]) if views else 0, run["recipe"]["epochs"], run["recipe"]["mixup"]

    for run in sorted(runs, key=order):
        r, last, best = run["recipe"], run["last"], run["best_val"]
        done = "" if last["epoch"] == r["epochs"] else f" (cut at {last['epoch']})"
        lines.append(
            f"| {r['targets']} | {r['epochs']}{done} | {r['mixup']} | {r['seed']} | "
            f"**{last['office_test']['top1']:.1%}** | {last['office_test']['top3']:.1%} | {last['auroc_unseen']} | "
            f"{last['labelled_at_90']:.1%} | {best['office_test']['top1']:.1%} ({best['epoch']}) | "
            f"{last['train_agreement']:.1%} | {last['seconds'] / 60:.1f} |"
        )
    return "\n".join([*lines, "", GOAL, ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.student_probe", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    a = sub.add_parser("prepare", help="decode the pack, fit the teacher's head, its fixed targets")
    a.add_argument("--pack", type=Path, default=Path(".probe"), metavar="DIR")
    a.add_argument("--work", type=Path, required=True, metavar="DIR")
    a.add_argument("--teacher-size", type=int, default=128, metavar="PX")
    a.add_argument("--image-size", type=int, default=64, metavar="PX")
    a.add_argument("--out", type=Path, required=True, metavar="FILE")
    t = sub.add_parser("train", help="train the replica under one recipe")
    t.add_argument("--work", type=Path, required=True, metavar="DIR")
    t.add_argument("--targets", choices=TARGETS, default=Recipe.targets)
    t.add_argument("--epochs", type=int, default=Recipe.epochs)
    t.add_argument("--views", type=int, default=Recipe.views, help="views per photo of --targets views")
    t.add_argument("--mixup", type=float, default=Recipe.mixup, help="mixup alpha; 0 disables")
    t.add_argument("--seed", type=int, default=Recipe.seed)
    t.add_argument("--distill-weight", type=float, default=TeacherConfig().weight)
    t.add_argument("--evals", type=int, default=40, help="evaluations over the run")
    t.add_argument("--out", type=Path, required=True, metavar="FILE")
    r = sub.add_parser("render", help="one table of the prepared teacher and every recipe")
    r.add_argument("prepared", type=Path, metavar="PREPARE_JSON")
    r.add_argument("runs", nargs="+", type=Path, metavar="RUN_JSON")
    r.add_argument("--results", default="bench/results", metavar="DIR")
    a = p.parse_args(argv)
    if a.step == "prepare":
        prepare(a.pack, a.work, a.teacher_size, a.image_size, a.out)
    elif a.step == "train":
        recipe = Recipe(targets=a.targets, views=a.views, epochs=a.epochs, mixup=a.mixup, seed=a.seed)
        recipe.teacher.weight = a.distill_weight
        train(a.work, recipe, a.out, a.evals)
    else:
        prepared = json.loads(a.prepared.read_text())
        runs = [json.loads(f.read_text()) for f in a.runs]
        markdown = render(prepared, runs)
        write_results(a.results, "student-probe", {"prepared": prepared, "runs": runs, "cpu": cpu_info()}, markdown)
        print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
