"""What a measurement holds fixed: workloads (presets, their targets and budgets), the calibrated targets file,
and the hardware a run asks for."""
