"""Recommendations per second: the one definition run.py's timing and bench.py report."""


def recs_per_step(config, worlds) -> int:
  """Recommendations one step makes over all repetitions: one per sampled user in every world
  (GT and GC count apart; an A/B world once, whatever its arms). Users with no eligible item
  count too: the step did the work of sampling and scoring them."""
  return config.repetitions * worlds.n_worlds * config.sim.batch_size


def rec_per_s(config, worlds, steps: int, seconds: float) -> float:
  """Recommendations per second of `steps` steps that took `seconds`."""
  return recs_per_step(config, worlds) * steps / seconds
