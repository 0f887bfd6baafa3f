"""Files on disk: result paths, locks, atomic reports, storage checks."""
