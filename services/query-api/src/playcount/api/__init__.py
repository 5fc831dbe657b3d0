"""query-api: KPI lookups, pipeline status, metrics and the ops dashboard."""
