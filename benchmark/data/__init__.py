"""The text a workload reads: corpora (local files, the embedded standard library, a hub dataset), the
tokenizer and packed token files, and the deterministic micro-batch streams of each seed."""
