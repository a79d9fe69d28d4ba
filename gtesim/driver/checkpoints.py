"""Orbax checkpoints of a run: the world states and the host-side history so far."""

import gc
import pathlib
import shutil
import sys

import orbax.checkpoint as ocp

from gtesim import logs
from gtesim.errors import GtesimError, WriteError, os_error_message

log = logs.get_logger("run")
_TMP = ".orbax-checkpoint-tmp"  # Orbax's marker of a save that did not finish.


_ABANDONED_READ = "_read_array_index_and_device_put"  # Orbax's per-array read coroutine.
_CLOSED_LOOP = "Event loop is closed"  # What tensorstore's late write callbacks raise.


def quiet_orbax_leftovers() -> None:
  """Drops the reports Python prints through sys.unraisablehook for orbax's leftovers after a
  failure that the caller reports in one line: "Exception ignored in: <coroutine
  _read_array_index_and_device_put>" (with tensorstore's "<bound method pybind11...>" specs),
  once per array orbax abandons after a damaged checkpoint's first failed read; and the
  "RuntimeError: Event loop is closed" tracebacks of tensorstore's write callbacks that land
  after a failed save's loop closed (written piecemeal from their threads, they could cut into
  the run's one error line on stderr). Other reports pass."""
  previous = sys.unraisablehook
  if getattr(previous, "gtesim_quiet", False):
    return

  def hook(unraisable):
    if getattr(unraisable.object, "__qualname__", "").endswith(_ABANDONED_READ):
      return
    if (isinstance(unraisable.exc_value, RuntimeError) and
        str(unraisable.exc_value) == _CLOSED_LOOP):
      return
    previous(unraisable)

  hook.gtesim_quiet = True
  sys.unraisablehook = hook


class Checkpoints:
  """Saves and restores {"state": pytree, "history": dict of arrays} by step.

  Opening it removes stale temporary folders (a save killed half way; the workdir lock
  guarantees no other writer); `primary`: this process may delete and move folders.
  """

  def __init__(self, directory, max_to_keep=2, primary=True):
    self._directory = pathlib.Path(directory).absolute()
    self._primary = primary
    if primary:
      self._remove_temporary("left by an interrupted save")
    self._manager = ocp.CheckpointManager(
        self._directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=False))

  def _remove_temporary(self, why: str) -> None:
    if not self._directory.is_dir():
      return
    for path in sorted(self._directory.iterdir()):
      if _TMP in path.name:
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed the temporary checkpoint folder %s (%s)", path.name, why)

  def latest_step(self):
    return self._manager.latest_step()

  def all_steps(self):
    return list(self._manager.all_steps())

  def save(self, step: int, state, history: dict) -> None:
    """Saves step `step`; refuses loudly where orbax would skip it (a step at or before the
    latest one is not written, and a later restore would return the old state). A failed
    write (disk full, quota, file-size limit) is a WriteError; the earlier steps are kept."""
    quiet_orbax_leftovers()
    try:
      saved = self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), history=ocp.args.StandardSave(history)))
      self._manager.wait_until_finished()
    except Exception as err:  # pylint: disable=broad-except  # orbax / tensorstore kinds.
      if self._primary:
        self._remove_temporary(f"the failed save of step {step}")
      last = self._last_complete()
      kept = (f"the last good checkpoint (step {last}) is kept" if last is not None else
              "no earlier checkpoint exists")
      raise WriteError(os_error_message(err, f"writing checkpoint step {step} in",
                                        self._directory) +
                       f"; {kept}: free space or raise the quota, then resume with --resume."
                       ) from None
    if not saved:
      raise GtesimError(f"checkpoint step {step} was not written in {self._directory}"
                        f" (it holds step {self.latest_step()}); clear() the old ones first.")

  def _last_complete(self):
    self._manager.reload()
    steps = self._manager.all_steps()
    return max(steps) if steps else None

  def clear(self) -> None:
    """Deletes every saved step."""
    for step in self._manager.all_steps():
      self._manager.delete(step)

  def restore(self, step: int, state_template):
    """Returns (state shaped like `state_template`, history dict). A damaged step raises
    orbax's error once (see `quiet_orbax_leftovers` for the noise it leaves)."""
    quiet_orbax_leftovers()
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(state_template), history=ocp.args.StandardRestore()))
    finally:
      gc.collect()  # Reports the reads abandoned by a failure now, to the filter.
    return restored.state, restored.history

  def set_aside(self, step: int, folder: pathlib.Path) -> pathlib.Path:
    """Moves step `step` out of the manager's folder (a damaged one); returns where to."""
    target = folder / str(step)
    if self._primary:
      folder.mkdir(parents=True, exist_ok=True)
      if target.exists():
        shutil.rmtree(target)
      shutil.move(str(self._directory / str(step)), target)
    self._manager.reload()
    return target

  def close(self):
    self._manager.close()
