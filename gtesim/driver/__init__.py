"""The host driver of a run: set-up, the loop over compiled chunks, history, outputs,
checkpoints, the workdir and the device mesh."""
