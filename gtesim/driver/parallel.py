"""Repetitions over devices and hosts: a 1-D mesh over the repetition axis (SPEC §6).

Under SLURM with several tasks (or with JAX_COORDINATOR_ADDRESS set) `initialize()` joins the
processes with `jax.distributed.initialize()`, which reads its arguments from the environment;
a single process skips it. Every process builds the same host-side inputs; each device holds
the repetitions of its mesh slice, and results are gathered to every process (only process 0
writes them).
"""

import math
import os
import sys
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from gtesim.core.mapping import REP_AXIS as AXIS
from gtesim.errors import InputError, one_line
from gtesim.logs import get_logger

log = get_logger("parallel")


def initialize(join_timeout_s: float = 60) -> None:
  """Joins a multi-process job when launched as one (SLURM ntasks > 1 or a coordinator set).

  One process started without srun in an --ntasks > 1 allocation would wait for peers that
  never come, and XLA's client then aborts the process (no Python exception). A watchdog
  thread (the join releases the GIL) ends the process after `join_timeout_s` instead, with
  one `[parallel] error:` line saying what to do and exit status 2.

  On CPU the processes need `JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo`.
  """
  ntasks = os.environ.get("SLURM_NTASKS", "1")
  if int(ntasks) <= 1 and "JAX_COORDINATOR_ADDRESS" not in os.environ:
    return
  who = (f"this process (SLURM_PROCID={os.environ.get('SLURM_PROCID', '?')} of "
         f"SLURM_NTASKS={ntasks})")
  fix = ("Start one process per task with srun (as scripts/slurm/run.sbatch does), or run a "
         "single process with the SLURM variables unset (env -u SLURM_NTASKS ...)")

  def give_up():
    sys.stderr.write(f"[parallel] error: {who} was not joined by the other processes within "
                     f"join_timeout_s = {join_timeout_s:g} s. {fix}; on a slow cluster raise "
                     "--config.join_timeout_s.\n")
    sys.stderr.flush()
    os._exit(2)  # pylint: disable=protected-access  # The main thread is blocked in XLA.

  watchdog = threading.Timer(join_timeout_s, give_up)
  watchdog.daemon = True
  watchdog.start()
  try:
    # XLA's own deadline comes later, so that the watchdog speaks first.
    jax.distributed.initialize(initialization_timeout=int(join_timeout_s) + 60)
  except (RuntimeError, ValueError, TypeError) as err:  # E.g. no coordinator address found.
    raise InputError(f"{who} could not start jax.distributed ({one_line(err, 200)}). "
                     f"{fix}.") from None
  finally:
    watchdog.cancel()


def usable_cores() -> int:
  """The CPU cores this process may run on (its affinity: a SLURM allocation's, not the
  node's)."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def split_cpu(n: int = 0) -> int:
  """Makes XLA's CPU platform `n` devices (0: one per usable core), so a mesh over them runs
  that many shards at once; XLA CPU otherwise leaves most of a program on one core. Call it
  before the first JAX computation (XLA reads the flag when its CPU client starts; afterwards
  it changes nothing). An XLA_FLAGS that already sets the count wins. Accelerator devices are
  unaffected. Returns the count asked for."""
  n = n or usable_cores()
  flag = "--xla_force_host_platform_device_count"
  current = os.environ.get("XLA_FLAGS", "")
  if flag not in current:
    os.environ["XLA_FLAGS"] = f"{current} {flag}={n}".strip()
  return n


def is_primary() -> bool:
  return jax.process_index() == 0


def from_primary(text: str) -> str:
  """Process 0's `text`, in every process (a no-op in a single process)."""
  if jax.process_count() == 1:
    return text
  data = np.zeros(4096, np.uint8)
  if is_primary():
    raw = text.encode()
    data[:len(raw)] = np.frombuffer(raw, np.uint8)
  data = np.asarray(multihost_utils.broadcast_one_to_all(data))
  return bytes(data[data > 0]).decode()


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
