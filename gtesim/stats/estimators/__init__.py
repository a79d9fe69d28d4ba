"""Estimators of the GTE from an A/B run, behind a registry (docs/extending.md).

`difference_in_means` (today's naive estimate) is every A/B point's `gte` in result.json and
the design's own cell in study.json; each name in `estimator.names` is scored beside it:
result.json `estimators.<name>.<label>`, study.json cells `designs.<design>+<name>`. Adding an
estimator is one module (an `Estimator`), one registry line and its config keys.
"""

from gtesim.errors import InputError, require
from gtesim.registry import Registry
from gtesim.stats.estimators import cuped
from gtesim.stats.estimators import difference_in_means
from gtesim.stats.estimators import dq
from gtesim.stats.estimators import p_extrapolation
from gtesim.stats.estimators.base import COVARIATE_FIELDS, NEEDS, Estimator, RunData  # pylint: disable=unused-import

ESTIMATORS = Registry("estimator", "estimator.names")
ESTIMATORS.register("difference_in_means", difference_in_means.DifferenceInMeans)
ESTIMATORS.register("p_extrapolation", p_extrapolation.PExtrapolation)
ESTIMATORS.register("cuped", cuped.Cuped)
ESTIMATORS.register("dq", dq.DifferencesInQ)
DEFAULT = "difference_in_means"  # Always scored: result.json's `gte`, the design's own cell.
SEP = "+"  # study.json's cell of a design scored by another estimator: <design>+<estimator>.


def names(config) -> tuple:
  """The run's estimators: the default, then estimator.names."""
  return (DEFAULT,) + tuple(config.estimator.names)


def make(config) -> dict:
  """{name: Estimator} of the run's estimators, in names() order; an estimator with a list of
  settings (dq's horizons) gives one named instance per setting (Estimator.instances)."""
  out = {}
  for n in names(config):
    out.update(ESTIMATORS.get(n).instances(config, n))
  return out


def applicable(config, design, points: tuple) -> tuple:
  """({name: Estimator}, {registry name: why not}) of estimator.names for one A/B run (its
  config, Design and SweepPoints): those whose check_config refuses the run are left out with
  its message. A single run refuses up front (check_config); a study's jobs differ (their
  designs, their points), and each is scored by the estimators that apply to it."""
  out, why = {}, {}
  for name in config.estimator.names:
    try:
      _check_one(config, name, design, points)
    except InputError as e:
      why[name] = str(e)
      continue
    out.update(ESTIMATORS.get(name).instances(config, name))
  return out, why


def needed(config, need: str) -> bool:
  """Whether an estimator of estimator.names needs `need` (a key of NEEDS) of the run."""
  return any(need in ESTIMATORS.get(n).needs for n in config.estimator.names
             if n in ESTIMATORS.names())


def cell(design: str, estimator: str) -> str:
  """study.json's cell name of a design scored by an estimator."""
  return design if estimator == DEFAULT else f"{design}{SEP}{estimator}"


def check_names(config) -> None:
  """estimator.names: registered, each once, not the default (any mode; a study's too)."""
  extra = tuple(config.estimator.names)
  require(len(set(extra)) == len(extra), "estimator.names", "holds a name twice.")
  require(DEFAULT not in extra, "estimator.names",
          f"'{DEFAULT}' is always scored (result.json's gte); list only the others.")
  for name in extra:
    ESTIMATORS.get(name)


def _check_one(config, name, design, points) -> None:
  """One estimator's own keys, and what it needs the run's design provides."""
  cls = ESTIMATORS.get(name)
  cls.check_config(config, design, points)
  for need in cls.needs:
    require(need in NEEDS, "estimator.names",
            f"the {name} estimator declares an unknown need '{need}'.")
    field = {"user_var": "user_var", "covariate": COVARIATE_FIELDS[0]}.get(need)
    require(field is None or field in design.unit.fields, "estimator.names",
            f"the {name} estimator needs {NEEDS[need]}, which the {config.mode} design does "
            "not keep.")


def check_config(config, design, points: tuple) -> None:
  """check_names, and each estimator's _check_one for one A/B run; `points`: its
  SweepPoints."""
  check_names(config)
  for name in config.estimator.names:
    _check_one(config, name, design, points)
