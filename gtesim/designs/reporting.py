"""What a design declares for its outputs: its own per-step metrics and their rows, its figure
panels, and what a study says of it (its evaluation fields are its unit piece's,
designs/pieces.py). The history, result.json, figures and study reports read these; no hook is
called."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Reporting:
  step_metrics: tuple = ()  # Names of the design's own per-step metrics (StepOut.design).
  step_metrics_world: str = ""  # Their rows' `world` in metrics.parquet.
  step_metrics_label: str = ""  # That world's name in figure legends.
  figure_panels: tuple = ()  # (title, y label, metric keys, text when empty) of the design's
  # own panels in figure.png (every run's figure has every design's panels).
  scored_against_frozen_truth: bool = False  # Studies also score it against the frozen-model
  # truth (snapshot).
  report_note: str = ""  # What a study report says of its estimate.
