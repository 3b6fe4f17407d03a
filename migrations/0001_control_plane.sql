-- The control plane: API keys, tenants' limits, exact counters, the usage ledger, the audit log.
-- Applied by `wrangler d1 migrations apply DB` (Workers; D1) and at every start by
-- `spin up --sqlite @migrations/0001_control_plane.sql` or spin-host's `--sqlite` (Spin), so
-- every statement is idempotent. Times are milliseconds since the Unix epoch; money is micro-USD
-- in counters (exact integers) and USD in the ledger.

-- The exact counters of one scope (`key:<id>` or `tenant:<name>`): on Workers each scope's row
-- lives in its own Durable Object's storage (which creates this table itself), on Spin here.
CREATE TABLE IF NOT EXISTS counters (scope TEXT PRIMARY KEY, window_start INTEGER NOT NULL, requests INTEGER NOT NULL, tokens INTEGER NOT NULL, inflight INTEGER NOT NULL, touched_ms INTEGER NOT NULL, period TEXT NOT NULL, spent_micros INTEGER NOT NULL);

-- API keys: only the SHA-256 of the key is stored; `prefix` is what lists show. `modes` and
-- `models` are allow-lists, one name per line (NULL: all); NULL limits are unlimited.
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    modes TEXT,
    models TEXT,
    rpm INTEGER,
    tpm INTEGER,
    concurrency INTEGER,
    budget_usd REAL,
    budget_period TEXT,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, created_at);

-- A tenant's own limits and budget.
CREATE TABLE IF NOT EXISTS tenant_limits (
    tenant TEXT PRIMARY KEY,
    rpm INTEGER,
    tpm INTEGER,
    concurrency INTEGER,
    budget_usd REAL,
    budget_period TEXT,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);

-- One row per request that reached a mode, written after its answer.
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    key_id TEXT,
    subject TEXT NOT NULL,
    mode TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    status TEXT NOT NULL,
    cache_hit INTEGER,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    latency_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_tenant_ts ON usage (tenant, ts);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);

-- Who did what to whom.
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    tenant TEXT NOT NULL,
    target TEXT,
    request_id TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_tenant_id ON audit (tenant, id);
