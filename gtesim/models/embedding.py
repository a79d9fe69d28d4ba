"""What the ID-embedding model classes share: their parameters are {"dense", "ids"}.

`dense` is a Flax parameter tree trained by the label's optimizer (AdamW, clipped); `ids`
holds the ID tables ({name: [rows, width] float32}) trained by row-wise AdaGrad on the rows a
step touches (models/ids.py). A class says which rows a batch of pairs touches (`id_rows`)
and computes its outputs from the gathered rows (`apply_rows`, `score_gathered`), so scoring
and training never read a whole table.
"""

import dataclasses
from typing import Optional

import jax

from gtesim.errors import GtesimError
from gtesim.models import gradient
from gtesim.models import ids as ids_lib
from gtesim.models.label_model import Dims


@dataclasses.dataclass(frozen=True)
class EmbeddingNet:
  """The shared part of an ID-embedding model class."""
  dims: Optional[Dims]  # The dataset's sizes (None: built without them, cannot run).
  id_learning_rate: float
  id_initial_accumulator: float
  id_eps: float
  id_dropout: float

  def _need_dims(self):
    if self.dims is None:
      raise GtesimError(f"the {type(self).__name__} model was built without the dataset's "
                        "sizes (models.label_models(config, dims)).")

  def tables(self) -> dict:
    """{table name: IdTable} (the classes' own)."""
    raise NotImplementedError

  def describe(self) -> dict:
    """The tables' sizes and hash collision rates (run.log, result.json)."""
    return {name: t.describe() for name, t in self.tables().items()}

  def gather(self, params, pairs) -> dict:
    """The rows of every table the pairs touch: {name: [..., width]}."""
    return {name: params["ids"][name][rows] for name, rows in self.id_rows(pairs).items()}

  def apply(self, params, pairs, train=False, key=None):
    return self.apply_rows(params["dense"], self.gather(params, pairs), pairs, train, key)

  def score_pairs(self, params, pairs):
    return self.score_gathered(params["dense"], self.gather(params, pairs), pairs)

  def init_accumulators(self, tables: dict) -> dict:
    return ids_lib.init_accumulators(tables, self.id_initial_accumulator)

  def init_optimizer(self, params, optimizer):
    """The dense parameters' optimizer state and the tables' AdaGrad accumulators."""
    return {"dense": optimizer.init(params["dense"]),
            "ids": self.init_accumulators(params["ids"])}

  def update(self, params, opt_state, optimizer, loss_fn, pairs, y, weight, n, key):
    """One gradient update on rows of pairs, sparse in the tables: (params, opt_state,
    loss before it)."""
    return gradient.sparse_update(self, optimizer, loss_fn, params, opt_state, pairs, y,
                                  weight, n, key)

  @staticmethod
  def dense_of(params):
    """The parameters per-arm scoring stacks over blocks: the dense ones (a table is never
    copied)."""
    return params["dense"]

  def update_ids(self, tables: dict, acc: dict, rows: dict, grads: dict):
    """Row-wise AdaGrad of every table on the rows touched (their per-occurrence grads)."""
    new_tables, new_acc = {}, {}
    for name in tables:
      new_tables[name], new_acc[name] = ids_lib.sparse_rowwise_adagrad(
          tables[name], acc[name], rows[name], grads[name], self.id_learning_rate,
          self.id_eps)
    return new_tables, new_acc


def drop_ids(rows: dict, names: tuple, rate: float, train: bool, key) -> dict:
  """While training, each occurrence of an id in `names` sees the zero (unknown) row with
  probability `rate`: the dense part also learns to score ids it has never seen (a dropped
  occurrence's gradient to its row is zero)."""
  if not train or rate <= 0 or key is None:
    return rows
  out = dict(rows)
  for i, name in enumerate(names):
    keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1 - rate, rows[name].shape[:-1])
    out[name] = rows[name] * keep[..., None]
  return out


def dropout_keys(key, n: int):
  """n dropout keys (None when not training)."""
  return (None,) * n if key is None else tuple(jax.random.split(key, n))
