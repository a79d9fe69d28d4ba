"""Repetitions over devices and hosts: a 1-D mesh over the repetition axis (SPEC §6).

Under SLURM with several tasks (or with JAX_COORDINATOR_ADDRESS set) `initialize()` joins the
processes with `jax.distributed.initialize()`, which reads its arguments from the environment;
a single process skips it. Every process builds the same host-side inputs; each device holds
the repetitions of its mesh slice, and results are gathered to every process (only process 0
writes them).
"""

import math
import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from gtesim.core.mapping import REP_AXIS as AXIS
from gtesim.logs import get_logger

log = get_logger("parallel")


def initialize() -> None:
  """Joins a multi-process job when launched as one (SLURM ntasks > 1 or a coordinator set).

  On CPU the processes need `JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo`.
  """
  ntasks = int(os.environ.get("SLURM_NTASKS", "1"))
  if ntasks > 1 or "JAX_COORDINATOR_ADDRESS" in os.environ:
    jax.distributed.initialize()


def is_primary() -> bool:
  return jax.process_index() == 0


def rep_mesh(n_reps: int) -> jax.sharding.Mesh:
  """A mesh over the most devices that divide the repetitions evenly."""
  n_dev = jax.device_count()
  n = max(d for d in range(1, n_dev + 1) if n_reps % d == 0 and n_dev % d == 0)
  if n < n_dev:
    log.info("%d repetitions over %d of %d devices (use a multiple of %d repetitions to use "
             "them all)", n_reps, n, n_dev, n_dev)
  return jax.make_mesh((n,), (AXIS,), devices=jax.devices()[:n],
                       axis_types=(jax.sharding.AxisType.Auto,))


def _place(x, sharding):
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def shard_reps(tree, mesh):
  """Host arrays with a leading repetition axis -> global arrays split over the mesh."""
  return jax.tree.map(lambda x: _place(x, NamedSharding(mesh, PartitionSpec(AXIS))), tree)


def replicate(tree, mesh):
  """Host arrays -> global arrays replicated on every device of the mesh."""
  return jax.tree.map(lambda x: _place(x, NamedSharding(mesh, PartitionSpec())), tree)


def to_host(tree):
  """Global arrays -> numpy on every process."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, tree)
  return multihost_utils.process_allgather(tree, tiled=True)


def devices_used(mesh) -> int:
  return math.prod(mesh.devices.shape)
