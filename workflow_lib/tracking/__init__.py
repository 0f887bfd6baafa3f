"""MLflow through a disk spool: the tracker, its replayer, secret masking."""
