"""Statistics on the host (numpy): the A/B estimator and its standard errors (a table of
variance methods), the global truth, paired statistics, descriptive summaries."""
