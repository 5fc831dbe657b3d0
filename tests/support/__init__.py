"""What tests share, importable as `tests.support` (pytest's `pythonpath = ["."]`), never a test module.

- `helpers`: waiting on conditions (never fixed sleeps) and reading JSON over HTTP;
- `oracle`: the independent plain-Python KPI computation every KPI test compares with;
- `sandbox`: `teardown(settings)`, deleting what `ops.bootstrap.bootstrap` created for a test;
- `writer`: results to apply and an independent view of the table (the writer's tests);
- `world`: a seeded catalogue and stream files for whole-pipeline scenarios, and `Running`, a
  stack with its world that checks it settled exactly (the reliability tests);
- `proxy`: a TCP proxy a test can cut, to make an endpoint unreachable;
- `deploy`: the deployment sources (template, compose file, Dockerfile) parsed, for the deploy tests.
"""
