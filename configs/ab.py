"""An A/B experiment with any design: `configs/ab.py:<design>` (SPEC §5).

Run:  python scripts/run.py --config configs/ab.py:pooling
      (or :splitting, :snapshot, :weighting, :codiverted, :cluster, :switchback)

Every design's own keys are its section of `experiment` (`experiment.weighting.*`,
`experiment.codiverted.*`, `experiment.cluster.*`, `experiment.switchback.*`;
docs/configuration.md, docs/designs.md).
"""

from gtesim.config import defaults as default_config


def get_config(design: str = "pooling"):
  config = default_config.get_config()
  config.mode = design
  return config
