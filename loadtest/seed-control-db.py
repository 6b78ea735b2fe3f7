#!/usr/bin/env python3
"""Bulk-loads a control plane's SQLite store with synthetic shipping tokens, for load tests
that need a large token table (loadtest/reload.sh). The store must already exist (a control
plane has run its migrations on it). Far faster than the API: one transaction, executemany.

    loadtest/seed-control-db.py data/control.db 1000000 [ACCOUNTS]

Tokens are `loadToken` + a 22-digit number, enabled, kind logs, spread over ACCOUNTS
(default 10,000) new accounts; every row carries the store's current feed version, so a
gateway takes them all from the snapshot."""
import hashlib
import sqlite3
import sys

path, count = sys.argv[1], int(sys.argv[2])
accounts = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
db = sqlite3.connect(path)
(version,) = db.execute("SELECT version FROM feed_state WHERE id = 1").fetchone()
(first_account,) = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM accounts").fetchone()
(first_token,) = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM shipping_tokens").fetchone()
with db:
    db.executemany(
        "INSERT INTO accounts (id, name, type, plan, created_at) VALUES (?, ?, 'logs', 'pro', 0)",
        ((first_account + a, f"load-{a}") for a in range(accounts)),
    )

    def rows():
        for i in range(count):
            token = f"loadToken{i:022d}"
            yield (first_token + i, first_account + i % accounts, token,
                   hashlib.sha256(token.encode()).hexdigest(), version)

    db.executemany(
        "INSERT INTO shipping_tokens (id, account_id, kind, name, token, digest, enabled, "
        "created_at, created_by, updated_at, updated_by, feed_version) "
        "VALUES (?, ?, 'logs', 'default', ?, ?, 1, 0, 'seed', 0, 'seed', ?)",
        rows(),
    )
    # Rows inserted with their own ids: the control plane's next creates start past them.
    db.execute("UPDATE id_sequences SET last = (SELECT MAX(id) FROM accounts) WHERE name = 'accounts'")
    db.execute("UPDATE id_sequences SET last = (SELECT MAX(id) FROM shipping_tokens) "
               "WHERE name = 'shipping_tokens'")
print(f"seeded {count} tokens over {accounts} accounts at feed version {version}", file=sys.stderr)
