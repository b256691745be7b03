"""What a command runs: sync, dry run, run report, watermark and s3clean operations, status."""
