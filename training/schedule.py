"""Learning-rate schedules with linear warm-up, and the optimizers that use them.

Warm-up matters here: BatchNorm statistics and Adam's moment estimates are poor for the first
few hundred steps, and a full learning rate then can throw the run off for epochs.

    from training.schedule import WarmupSchedule, make_optimizer
    lr = WarmupSchedule(cfg.optim.lr, cfg.schedule, steps_per_epoch=69)
    opt = make_optimizer(cfg.optim, lr)
    float(lr(step))
"""

from __future__ import annotations

import math

from training.config import OptimConfig, ScheduleConfig
from training.tfenv import keras, tf


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """0 -> peak linearly over the warm-up, then cosine to ``min_lr_ratio * peak``, step, or constant."""

    def __init__(self, peak: float, cfg: ScheduleConfig, steps_per_epoch: int):
        super().__init__()
        self.peak, self.cfg, self.steps_per_epoch = float(peak), cfg, int(steps_per_epoch)
        self.warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))
        self.total_steps = max(1, cfg.epochs * steps_per_epoch)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = tf.cast(self.warmup_steps, tf.float32)
        if self.cfg.schedule == "cosine":
            progress = (step - warm) / max(1.0, self.total_steps - self.warmup_steps)
            floor = self.cfg.min_lr_ratio
            after = self.peak * (floor + (1 - floor) * 0.5 * (1 + tf.cos(math.pi * tf.clip_by_value(progress, 0, 1))))
        elif self.cfg.schedule == "step":
            drops = tf.floor(step / (self.cfg.step_epochs * self.steps_per_epoch))
            after = self.peak * tf.pow(self.cfg.step_gamma, drops)
        else:
            after = tf.constant(self.peak)
        ramp = self.peak * (step + 1) / tf.maximum(warm, 1.0)
        return tf.where(step < warm, ramp, after)

    def get_config(self):
        return {"peak": self.peak, "steps_per_epoch": self.steps_per_epoch, **vars(self.cfg)}


def make_optimizer(cfg: OptimConfig, learning_rate) -> keras.optimizers.Optimizer:
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=cfg.momentum, nesterov=True)
    return keras.optimizers.Adam(learning_rate, beta_1=cfg.momentum)
