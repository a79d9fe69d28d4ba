"""Progress to watch on a cluster: TensorBoard event files in `<workdir>/tensorboard/`, beside
the Parquet tables (`tensorboard --logdir <workdir>`; written with tensorboardX, which needs no
TensorFlow). Means over repetitions, per world-arm of the first sweep point:

- `pretrain/train_loss/<label>`, `pretrain/val/<metric>` per epoch;
- `estimate/<label>` (the design's GTE estimate so far; the truth GT − GC in global mode),
  `train/loss/<world>/<label>`, `val/<world>/<metric>`, `rec_per_s` per validation interval
  (x axis: the simulation step).

A resumed run adds an event file; after a hard kill it holds again the steps written since the
last checkpoint. Only the first process writes. The Parquet tables stay the record; these are a view.
"""

import pathlib

import numpy as np
import tensorboardX

from gtesim.driver import parallel
from gtesim.stats import descriptive

FOLDER = "tensorboard"


class Scalars:
  """Writes scalars of one run into `folder` (in the first process; the others write
  nothing)."""

  def __init__(self, folder: pathlib.Path):
    self._writer = (tensorboardX.SummaryWriter(str(folder), flush_secs=30)
                    if parallel.is_primary() else None)

  def _add(self, tag, value, step):
    value = float(value)
    if np.isfinite(value):
      self._writer.add_scalar(tag, value, step)

  def pretrain_epoch(self, epoch: int, labels, metrics: dict) -> None:
    if self._writer is None:
      return
    for i, label in enumerate(labels):
      self._add(f"pretrain/train_loss/{label}",
                descriptive.finite_mean(metrics["train_loss"][:, i]), epoch)
    for key, value in metrics.items():
      if key != "train_loss":
        self._add(f"pretrain/val/{key}", descriptive.finite_mean(value), epoch)

  def interval(self, step: int, config, history, worlds, evaluated, rate: float) -> None:
    """After a validation interval: the estimate so far, losses, validation metrics, rec/s."""
    if self._writer is None:
      return
    labels = list(config.labels)
    gte = worlds.design.layout.point_result(labels, history, worlds, 0, config)["gte"]
    for label in labels:
      self._add(f"estimate/{label}", descriptive.finite_mean(gte[label]["per_rep"]), step)
    chunk = history.steps.loss[history.eval_step[-2]:]  # [t, B, W, A, L]
    for w, a, point, name in worlds.groups():
      if point not in (0, -1):
        continue
      for l, label in enumerate(labels):
        self._add(f"train/loss/{name}/{label}",
                  descriptive.finite_mean(chunk[:, :, w, a, l]), step)
      for metric, value in evaluated["val"].items():
        self._add(f"val/{name}/{metric}", descriptive.finite_mean(value[:, w, a]), step)
    self._add("rec_per_s", rate, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
