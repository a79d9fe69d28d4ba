"""Estimators of the GTE from an A/B run, behind a registry (docs/extending.md).

`difference_in_means` (today's naive estimate) is every A/B point's `gte` in result.json and
the design's own cell in study.json; each name in `estimator.names` is scored beside it:
result.json `estimators.<name>.<label>`, study.json cells `designs.<design>+<name>`. Adding an
estimator is one module (an `Estimator`), one registry line and its config keys.
"""

from gtesim.errors import require
from gtesim.registry import Registry
from gtesim.stats.estimators import difference_in_means
from gtesim.stats.estimators import p_extrapolation
from gtesim.stats.estimators.base import NEEDS, Estimator, RunData  # pylint: disable=unused-import

ESTIMATORS = Registry("estimator", "estimator.names")
ESTIMATORS.register("difference_in_means", difference_in_means.DifferenceInMeans)
ESTIMATORS.register("p_extrapolation", p_extrapolation.PExtrapolation)
DEFAULT = "difference_in_means"  # Always scored: result.json's `gte`, the design's own cell.
SEP = "+"  # study.json's cell of a design scored by another estimator: <design>+<estimator>.


def names(config) -> tuple:
  """The run's estimators: the default, then estimator.names."""
  return (DEFAULT,) + tuple(config.estimator.names)


def make(config) -> dict:
  """{name: Estimator} of the run's estimators, in names() order."""
  return {n: ESTIMATORS.get(n).from_config(config) for n in names(config)}


def cell(design: str, estimator: str) -> str:
  """study.json's cell name of a design scored by an estimator."""
  return design if estimator == DEFAULT else f"{design}{SEP}{estimator}"


def check_config(config, design, points: tuple) -> None:
  """estimator.names: registered, each once, not the default; each one's own keys; what it
  needs the run's design provides; `points`: the run's SweepPoints."""
  extra = tuple(config.estimator.names)
  require(len(set(extra)) == len(extra), "estimator.names", "holds a name twice.")
  require(DEFAULT not in extra, "estimator.names",
          f"'{DEFAULT}' is always scored (result.json's gte); list only the others.")
  for name in extra:
    cls = ESTIMATORS.get(name)
    cls.check_config(config, points)
    for need in cls.needs:
      require(need in NEEDS, "estimator.names",
              f"the {name} estimator declares an unknown need '{need}'.")
      require(need != "user_var" or need in design.unit.fields, "estimator.names",
              f"the {name} estimator needs {NEEDS[need]}, which the {config.mode} design does "
              "not keep.")
