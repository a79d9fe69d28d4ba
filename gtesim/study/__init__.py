"""Studies (SPEC §6): one production model per repetition, the truth and every design from
it, paired statistics, figures and the report; and merging a run split over array jobs."""
