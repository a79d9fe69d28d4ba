"""Weighting (Si 2023): a weight model G(x) ~ P(Z=1 | x) reweights the pooled data per arm.

G is trained every step with BCE on (x, Z) of the step's items; the treatment models train on
every item with weight G(x)/p, the control models with (1 - G(x))/(1 - p), loss
(1/n) sum W l. `experiment.weighting.g_update = "after"` computes the step's weights with G
before it sees that step's items and then updates G; "before" updates G first (which pulls G(x_i)
towards Z_i and the weights towards splitting's Z/p). `experiment.weighting.features = "video"`
gives G the video features alone (it then cannot recognise users); `experiment.weighting.clip`
clips both weights from above. G starts at G(x) = p (last layer zero, bias logit p): the
Bayes-optimal model before the experiment, where Z is independent of x.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from gtesim import label_kinds
from gtesim import models
from gtesim import prng
from gtesim import metrics
from gtesim.config.defaults import at as at_key
from gtesim.core.training import train_update
from gtesim.designs import pieces
from gtesim.designs.base import ABDesign, ab_pieces
from gtesim.designs.reporting import Reporting
from gtesim.errors import require

METRICS = ("loss", "auc", "accuracy",  # G's metrics on each step's items, before its update,
           "sd_t", "sd_c", "max")  # and the training weights' spread: sd of the treatment
# models' G/p and the control models' (1 - G)/(1 - p) over the step's items, their largest
# (1 everywhere while G = p: how far the weights move from 1, measured).


def arm_weights(g, p, clip: float = 0.0):
  """[2, b] weights of the step's items: G/p for treatment, (1 - G)/(1 - p) for control
  (clipped from above at `clip` when clip > 0)."""
  weight = jnp.stack([g / p, (1 - g) / (1 - p)])
  if clip > 0:
    weight = jnp.minimum(weight, clip)
  return weight


@struct.dataclass
class WeightModel:
  """G's state in a world."""
  g_params: tuple  # (G's parameters,)
  g_opt: tuple  # (G's optimizer state,)


@dataclasses.dataclass(frozen=True)
class Weighted(pieces.Learning):
  """Every arm learns from every item, weighted by G (see the module docstring)."""
  weight_model: models.LabelModel = None  # G.
  clip: float = 0.0  # Upper clip of G/p and (1-G)/(1-p); 0 = none.
  g_first: bool = False  # The weights come from G after (True) or before its update.

  def init_state(self, spec, rep, point):
    g = self.weight_model
    p = g.init(jax.random.fold_in(prng.stream(rep.key, "init"), len(spec.models)),
               spec.static.dims)
    g_params = (g.with_head(p, jnp.log(point.p_treatment / (1 - point.p_treatment)),
                            zero_kernel=True),)
    return WeightModel(g_params, (g.init_optimizer(g_params[0]),))

  def weights(self, spec, state, rep, point, pairs, z, rec_ok, key):
    g_model = self.weight_model
    raw = g_model.apply(state.g_params[0], pairs)
    zf = z.astype(jnp.float32)
    before = {"weight/loss": metrics.masked_mean(g_model.loss(raw, zf), rec_ok),
              "weight/auc": metrics.auc(raw, zf, rec_ok),
              "weight/accuracy": metrics.masked_mean((raw > 0) == z, rec_ok)}
    g_params, g_opt, _ = train_update((g_model,), state.g_params, state.g_opt, pairs,
                                      zf[:, None], rec_ok.astype(jnp.float32), jnp.sum(rec_ok),
                                      jax.random.fold_in(key, spec.design.arms),
                                      spec.updates_per_step)
    weighting_g = g_params if self.g_first else state.g_params  # G after or before update.
    g = jax.nn.sigmoid(g_model.apply(weighting_g[0], pairs))
    ok = rec_ok.astype(jnp.float32)
    mask = jnp.broadcast_to(ok, (spec.design.arms,) + ok.shape)
    weight = arm_weights(g, point.p_treatment, self.clip)
    mean = [metrics.masked_mean(w, rec_ok) for w in weight]
    spread = {f"weight/sd_{a}": jnp.sqrt(metrics.masked_mean((w - m) ** 2, rec_ok))
              for a, w, m in zip("tc", weight, mean)}
    spread["weight/max"] = jnp.max(jnp.where(rec_ok[None], weight, 0.0))
    return WeightModel(g_params, g_opt), mask, weight, {**before, **spread}

  def extra_flops(self, spec):
    """G: trained on the step's items, plus the forward passes of its metrics and weights."""
    f = self.weight_model.flops(spec.static.user_layout.width,
                                spec.static.video_layout.width, spec.n_candidate)
    return f["row"] * spec.batch_size * (3 * spec.updates_per_step + 2)


@dataclasses.dataclass(frozen=True)
class Weighting(ABDesign):
  """See the module docstring."""
  reporting: ClassVar[Reporting] = Reporting(
      step_metrics=tuple(f"weight/{m}" for m in METRICS), step_metrics_world="G",
      step_metrics_label="G on new items", figure_panels=(
          ("weight-model AUC and accuracy", "AUC, accuracy",
           ("weight/auc", "weight/accuracy"), "no weight model in this mode"),
          ("weight-model loss", "BCE loss", "weight/loss", "no weight model in this mode"),
          ("training weights' spread", "sd over the step's items; largest weight (no unit)",
           ("weight/sd_t", "weight/sd_c", "weight/max"), "no weight model in this mode")))

  @classmethod
  def from_config(cls, name, config, ds=None):
    exp = config.experiment
    g = models.label_model(config, "weight", label_kinds.KINDS["binary"], "bce",
                           exp.weighting.g, models.dims_of(ds) if ds is not None else None,
                           video_only=exp.weighting.features == "video")
    return cls(name, **{**ab_pieces(config), "learning": Weighted(
        trains=config.sim.train_models, weight_model=g, clip=exp.weighting.clip,
        g_first=exp.weighting.g_update == "before")})

  @classmethod
  def check_config(cls, config, active):
    exp = config.experiment
    require(exp.weighting.g_update in ("after", "before"), "experiment.weighting.g_update",
            f"'{exp.weighting.g_update}': use 'after' or 'before'.")
    require(exp.weighting.clip >= 0, "experiment.weighting.clip", "must be >= 0 (0: no clipping).")
    require(exp.weighting.features in ("all", "video"), "experiment.weighting.features",
            f"'{exp.weighting.features}': use 'all' or 'video'.")
    require(not models.counts(exp.weighting.g.model), "experiment.weighting.g.model",
            f"'{exp.weighting.g.model}' learns by counting; the weight model G is a "
            "probability: use a gradient class (mlp, two_tower, wide_deep).")
    counting = models.counting_keys(config) if active else []
    require(not counting, counting[0] if counting else "mode",
            f"'{at_key(config, counting[0]) if counting else ''}' learns by counting, which "
            "cannot weight a row; weighting trains on weighted rows: run another design or "
            "a gradient class.")

  @classmethod
  def study_extra_jobs(cls, config):
    if not config.study.weighting_video:
      return []
    return [("weighting-video", {"experiment.weighting.features": "video"})]
