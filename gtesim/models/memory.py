"""What the label models hold in memory: their parameters and optimizer states, exactly.

Counted from the arrays' shapes (jax.eval_shape of init and init_optimizer: nothing is
allocated), so the figures hold for any dataset size, including ones this machine could not
hold.
"""

import jax


def model_bytes(models, dims) -> int:
  """Bytes of one arm's label models: every parameter and optimizer-state array."""
  total = 0
  for m in models:
    shapes = jax.eval_shape(lambda m=m: (lambda p: (p, m.init_optimizer(p)))(
        m.init(jax.random.key(0), dims)))
    total += sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes))
  return total


def per_repetition_bytes(models, dims, n_worlds: int, arms: int) -> int:
  """Model bytes of one repetition: every world's arms, plus the production model the
  worlds start from (pretraining keeps the last and the best epoch's parameters and
  optimizer states)."""
  return model_bytes(models, dims) * (n_worlds * arms + 2)
