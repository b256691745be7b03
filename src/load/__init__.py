"""The load stage: staged Parquet files into the target, exactly once (ledger, drift, targets)."""
