"""What a measurement holds fixed: the workload presets (model, sequences, batch sizes, budgets, evaluation
grid, targets) and the targets calibrated on each corpus (targets.json)."""
