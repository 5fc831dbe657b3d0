"""dynamo-writer: applies one day's KPI result to the single table, idempotently and monotonically."""
