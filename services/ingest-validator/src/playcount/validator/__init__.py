"""ingest-validator: judges every uploaded file, quarantines bad rows, writes clean data to the lake."""
