"""Run records and what reads them: the record's schema, the results folder (atomic writes, claims), the
checks a record from elsewhere must pass, and what a run's curve says (steps to a target, which run is
better)."""
