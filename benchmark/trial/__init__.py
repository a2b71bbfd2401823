"""One trial under a Lightning Trainer: its identity, the host it builds, the callbacks that evaluate,
checkpoint and stop it, the record it writes, how it is launched, where it starts (warm start or checkpoint),
its loggers, and ``bench perf``'s per-step costs."""
