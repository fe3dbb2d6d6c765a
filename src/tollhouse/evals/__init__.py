"""The eval runner: a client of the gateway, like any app (DESIGN.md, "Around the path").

One module per job:

- `suite`: a suite file (YAML or JSONL) read and checked once, errors naming line and key;
- `checks`: each check of a case judged against its answer;
- `judge`: the rubric prompt a judge model grades and how its verdict is read;
- `clients`: one call through the official SDK of the suite's format;
- `in_process`: a gateway started on loopback from a config, for runs without one;
- `costs`: the figures of each call (cost, model served) read from the gateway's ledger;
- `runner`: every case of a suite on every target, concurrently, with a progress bar;
- `figures`: pass rates, cost per case, latency percentiles and spread per target;
- `gate`: cutoffs, the verdict and its exit code;
- `report`: the results as a table, JSON or JUnit XML;
- `store`: results kept in the config store's database, and "did suite S pass for V";
- `capture`: a starting suite from ledger rows whose text was stored.

The runner needs the `eval` extra (`pip install 'tollhouse[eval]'`: the SDKs and
jsonschema); `tollhouse eval` says so when it is missing.
"""
