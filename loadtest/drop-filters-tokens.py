#!/usr/bin/env python3
"""Writes a token file for the bench (config/tokens-volume.json's tokens and volumes) with
N active log drop filters, none of which matches the logs-small line, and N metrics
filters of regular expressions that match none of remote_write's series.

  loadtest/drop-filters-tokens.py OUT N own|other

own:   the filters belong to the bench's account (1001): every log is checked against
       all N (no log type, one condition `service` = svc-<i>; the line's is "checkout").
other: they belong to N other accounts: the bench's account has none.
"""
import json
import sys

out, n, where = sys.argv[1], int(sys.argv[2]), sys.argv[3]
snapshot = json.load(open("config/tokens-volume.json"))
account = lambda i: 1001 if where == "own" else 5000 + i
snapshot["filters"] = {
    "logs": [
        {"id": i + 1, "account_id": account(i), "active": True,
         "field_conditions": [{"fieldName": "service", "value": f"svc-{i}"}],
         "threshold_bytes": 0}
        for i in range(n)
    ],
    "metrics": [
        {"id": i + 1, "account_id": account(i), "active": True,
         "drop_policy": "DROP_BEFORE_PROCESSING",
         "filter": {"operator": "AND", "expression": [
             {"name": "__name__", "value": f"(node|process)_[a-z]+_{i}_.*",
              "comparisonFilter": "REGEX_MATCH"}]}}
        for i in range(n)
    ],
}
json.dump(snapshot, open(out, "w"), indent=1)
