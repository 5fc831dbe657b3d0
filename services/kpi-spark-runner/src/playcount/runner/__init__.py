"""kpi-spark-runner: recomputes the exact KPIs of every date a new file touched, on a warm Spark session."""
