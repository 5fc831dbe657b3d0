"""The `playcount` command: the embedded stack, the demo, the data generator and operations."""
