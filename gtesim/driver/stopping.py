"""Graceful stops (SIGTERM, SIGINT): the run finishes its current chunk, checkpoints it and
exits with STOPPED_STATUS, so that `--resume` (a requeued job) continues bit for bit.

SLURM sends SIGTERM before it preempts, requeues or kills a job at its time limit (then
SIGKILL after KillWait, 30 s by default; `#SBATCH --signal=TERM@120` gives a time-limited job
two minutes). A second signal of the same kind while stopping kills the process at once.
With several JAX processes, all agree at each chunk boundary on whether any was signalled,
so they checkpoint the same step together.
"""

import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

from gtesim.errors import GtesimError

STOPPED_STATUS = 75  # EX_TEMPFAIL: stopped on request, resumable.
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(GtesimError):
  """The run stopped on a signal; the message says where and how to resume (`hint`: how a
  single run resumes; an entry point that resumes otherwise, a study or the advisor by being
  run again, says its own through cli.run)."""
  status = STOPPED_STATUS

  def __init__(self, where: str, hint: str = "resume with --resume"):
    super().__init__(f"{where}; {hint}")
    self.where, self.hint = where, hint


class StopRequests:
  """A context that turns SIGTERM / SIGINT into a request the driver polls (`requested`)."""

  def __init__(self):
    self.signal_name = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signal_name == signal.Signals(signum).name:  # Asked twice: stop now.
      signal.signal(signum, signal.SIG_DFL)
      signal.raise_signal(signum)
    self.signal_name = signal.Signals(signum).name

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in _SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}

  def requested(self) -> bool:
    """Whether this process (or, with several, any process) was signalled; call it at the
    same points in every process."""
    flag = self.signal_name is not None
    if jax.process_count() > 1:
      flags = multihost_utils.process_allgather(np.int32(flag))
      if np.any(flags) and not flag:
        self.signal_name = "SIGTERM"  # Another process's; SLURM signals every task alike.
      flag = bool(np.any(flags))
    return flag
