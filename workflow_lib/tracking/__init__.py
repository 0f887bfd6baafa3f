"""What a run records: MLflow through a disk spool (the tracker, its replayer), the job logs, secret masking."""
