"""Split-dependent feature encoding: standardization and the training vocabulary (SPEC §2).

Per repetition, numerical columns are standardized with mean and sd over the *training*
entities (train users; train videos), and a categorical value never seen among training
entities maps to its field's unknown slot. Both are small per-repetition arrays (`EncodingParams`)
applied inside the compiled step by `dense()`, so the big feature tables stay shared by all
repetitions.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from gtesim.data.features import MISSING, UNKNOWN, EntityFeatures


@dataclasses.dataclass(frozen=True)
class Layout:
  """Static widths of one entity's dense feature vector: [numerical | one-hot fields]."""
  n_num: int
  cat_widths: tuple
  multi_widths: tuple

  @classmethod
  def of(cls, feats: EntityFeatures):
    return cls(feats.num.shape[1], tuple(len(v) + 2 for v in feats.cat_vocab),
               tuple(len(v) + 2 for v in feats.multi_vocab))

  @property
  def width(self):
    return self.n_num + sum(self.cat_widths) + sum(self.multi_widths)

  @property
  def offsets(self):
    """Start of each categorical then multi-hot field in the flat `remap` array."""
    return np.cumsum((0,) + self.cat_widths + self.multi_widths)[:-1]


def fit(feats: EntityFeatures, train: np.ndarray) -> dict:
  """Fits one repetition's encoding on the training entities (`train`: bool [n]).

  Returns:
    {"mean": [k], "std": [k], "remap": [sum of field widths] int32}: slot s of a field maps to
    remap[offset + s], itself if seen among training entities (or missing), else unknown.
  """
  num = feats.num[train].astype(np.float64)
  mean = num.mean(0) if len(num) else np.zeros(feats.num.shape[1])
  std = num.std(0) if len(num) else np.ones(feats.num.shape[1])
  std = np.where(std > 0, std, 1.0)
  remaps = []
  fields = [feats.cat[:, j] for j in range(feats.cat.shape[1])] + list(feats.multi)
  widths = Layout.of(feats).cat_widths + Layout.of(feats).multi_widths
  for slots, width in zip(fields, widths):
    seen = np.zeros(width, bool)
    used = slots[train].ravel()
    seen[used[used >= 0]] = True
    seen[MISSING] = seen[UNKNOWN] = True
    remaps.append(np.where(seen, np.arange(width), UNKNOWN).astype(np.int32))
  remap = np.concatenate(remaps) if remaps else np.zeros(0, np.int32)
  return {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "remap": remap}


def dense(layout: Layout, params, num, cat, multi):
  """Builds dense feature vectors of some entities (a pure jnp function, used in the step).

  Args:
    layout: the entity's static Layout.
    params: one repetition's {"mean", "std", "remap"} (see `fit`).
    num, cat, multi: the entities' rows of EntityFeatures.num, .cat and each .multi.

  Returns:
    float32 [..., layout.width].
  """
  parts = [(num - params["mean"]) / params["std"]]
  offsets = layout.offsets
  for j, width in enumerate(layout.cat_widths):
    slot = params["remap"][offsets[j] + cat[..., j]]
    parts.append(jnp.asarray(slot[..., None] == jnp.arange(width), jnp.float32))
  for j, width in enumerate(layout.multi_widths):
    off = offsets[len(layout.cat_widths) + j]
    slots = multi[j]
    slot = jnp.where(slots >= 0, params["remap"][off + jnp.maximum(slots, 0)], -1)
    parts.append(jnp.sum(slot[..., None] == jnp.arange(width), axis=-2, dtype=jnp.float32))
  return jnp.concatenate(parts, axis=-1)


def describe(feats: EntityFeatures, params_per_rep: list) -> dict:
  """The fitted encoding as JSON-ready data (saved with results to reproduce a run)."""
  return {
      "numerical": [{"name": n, "mean_per_rep": [float(p["mean"][i]) for p in params_per_rep],
                     "std_per_rep": [float(p["std"][i]) for p in params_per_rep]}
                    for i, n in enumerate(feats.num_names)],
      "categorical": [{"name": n, "slots": ["<missing>", "<unknown>"] + list(v)}
                      for n, v in zip(feats.cat_names + feats.multi_names,
                                      feats.cat_vocab + feats.multi_vocab)],
      "unseen_in_training_per_rep": [int((p["remap"] == UNKNOWN).sum()) -
                                     len(Layout.of(feats).offsets) for p in params_per_rep],
  }


