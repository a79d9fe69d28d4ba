"""Orbax checkpoints of a run: the world states and the host-side history so far."""

import pathlib

import orbax.checkpoint as ocp

from gtesim.errors import GtesimError


class Checkpoints:
  """Saves and restores {"state": pytree, "history": dict of arrays} by step."""

  def __init__(self, directory, max_to_keep=2):
    self._manager = ocp.CheckpointManager(
        pathlib.Path(directory).absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=False))

  def latest_step(self):
    return self._manager.latest_step()

  def save(self, step: int, state, history: dict) -> None:
    """Saves step `step`; refuses loudly where orbax would skip it (a step at or before the
    latest one is not written, and a later restore would return the old state)."""
    saved = self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), history=ocp.args.StandardSave(history)))
    self._manager.wait_until_finished()
    if not saved:
      raise GtesimError(f"checkpoint step {step} was not written in {self._manager.directory}"
                        f" (it holds step {self.latest_step()}); clear() the old ones first.")

  def clear(self) -> None:
    """Deletes every saved step."""
    for step in self._manager.all_steps():
      self._manager.delete(step)

  def restore(self, step: int, state_template):
    """Returns (state shaped like `state_template`, history dict)."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(state_template), history=ocp.args.StandardRestore()))
    return restored.state, restored.history

  def close(self):
    self._manager.close()
