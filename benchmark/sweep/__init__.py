"""A suite: its inputs, checked first; the plan of trials (grids, extensions, seed reruns, shards); the queue
that runs them under claims; settings from the command line; the dry run's estimate; calibration of targets;
and the ranks of a multi-process sweep."""
