"""Environments (SPEC §4, `sim.environment`): one module each, resolved by name here only.

* `replay`: each user's logged items are the candidates, their logged labels the outcomes.
* `matrix`: the same on a fully observed matrix (KuaiRec's small matrix).
* `latent` (synthetic data): candidates from the whole catalogue, outcomes from the latent
  model.

Only the candidates (step 2) and the outcome lookup differ; "used" then means "already
recommended to this user in this world". Adding one is a module with an Environment
subclass, one line in ENVIRONMENTS and a config (docs/extending.md).
"""

from gtesim.environments import latent
from gtesim.environments import matrix
from gtesim.environments import release
from gtesim.environments import replay
from gtesim.environments import retrieval
from gtesim.errors import InputError, require
from gtesim.registry import Registry

ENVIRONMENTS = Registry("environment", "sim.environment")
ENVIRONMENTS.register("replay", replay.Replay)
ENVIRONMENTS.register("matrix", matrix.Matrix)
ENVIRONMENTS.register("latent", latent.Latent)

OUTCOMES = tuple(dict.fromkeys(o for _, e in ENVIRONMENTS.items() for o in e.outcomes))


def get(config):
  """The environment class of `sim.environment`."""
  return ENVIRONMENTS.get(config.sim.environment)


def make(config, static, n_train: int):
  """The environment of a config over a dataset's static shapes."""
  return get(config).from_config(config, static, n_train)


def check_config(config) -> None:
  """The environments' and retrievals' checks of their own config keys."""
  sim = config.sim
  for key, choices in (("environment", ENVIRONMENTS.names()), ("outcome", OUTCOMES),
                       ("retrieval", retrieval.RETRIEVALS.names())):
    require(sim[key] in choices, f"sim.{key}", f"'{sim[key]}': use one of {', '.join(choices)}.")
  retrieval.check_config(config)
  for name, env in ENVIRONMENTS.items():
    env.check_config(config, active=name == sim.environment)
  if sim.outcome not in get(config).outcomes:
    offering = [n for n, e in ENVIRONMENTS.items() if sim.outcome in e.outcomes]
    others = [n for n, e in ENVIRONMENTS.items() if sim.outcome not in e.outcomes]
    raise InputError(f"sim.outcome = '{sim.outcome}' needs sim.environment = "
                     f"{' or '.join(repr(n) for n in offering)} ({' and '.join(others)} "
                     "outcomes are the logged ones).")
  require(sim.release in release.MODES, "sim.release",
          f"'{sim.release}': use one of {', '.join(release.MODES)}.")
  require(0 < sim.new_video_share < 1, "sim.new_video_share", "must be in (0, 1).")
  if sim.release != "all" and not get(config).offers_release:
    offering = [n for n, e in ENVIRONMENTS.items() if e.offers_release]
    raise InputError(f"sim.release = '{sim.release}' needs sim.environment = "
                     f"{' or '.join(repr(n) for n in offering)}: '{sim.environment}' "
                     "replays impressions of videos already published at the log's dates "
                     "(environments/release.py).")


def check_data(config, ds) -> None:
  """Refuses an environment the data cannot provide, naming the config key."""
  get(config).check_data(config, ds)
