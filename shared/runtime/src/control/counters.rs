//! Exact counters: requests and tokens per minute, requests in flight and spend per budget
//! period, one row per scope (`key:<id>`, `tenant:<name>`).
//!
//! Admission is one guarded upsert per scope: the row is changed only when every limit still
//! holds with this request counted, and `RETURNING` says whether it was. SQLite runs a statement
//! atomically (the Durable Object of the scope on Workers, the one database on Spin), so N
//! simultaneous requests against a limit of R admit exactly R. A request is admitted by every
//! scope or by none: when one scope refuses, the others' reservations are released. After the
//! answer, the reservation is settled to the real usage.

use opencode_core::limits::{self, Budget, Counted, Hit, Limits};

use super::{int, uint, ControlError};
use crate::host::Host;
use crate::log::{self, Field};
use crate::sql::{Database, Statement, Value};

/// Requests in flight are forgotten when their scope saw no admission or settlement for this
/// long: a request whose instance died before settling cannot hold a slot for ever.
pub const STALE_INFLIGHT_MS: u64 = 15 * 60_000;

/// One scope's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub name: String,
    pub limits: Limits,
    pub budget: Option<Budget>,
}

impl Scope {
    /// Whether anything is counted for this scope.
    pub fn is_limited(&self) -> bool {
        !self.limits.is_empty() || self.budget.is_some()
    }

    fn period(&self, now_ms: u64) -> String {
        self.budget.map_or_else(String::new, |budget| limits::period_key(budget.period, now_ms))
    }

    fn budget_micros(&self) -> Option<i64> {
        self.budget.map(|budget| limits::micros(budget.usd))
    }
}

/// What a request reserves: its estimated tokens (input plus its output limit) and its most
/// expensive cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ask {
    pub tokens: u64,
    pub cost_micros: i64,
}

/// One scope's reservation, as admitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub scope: Scope,
    pub window_start: u64,
    pub period: String,
    /// The counters with this request counted.
    pub counted: Counted,
}

/// An admitted request's reservations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    pub ask: Ask,
    pub held: Vec<Held>,
}

/// A refusal: the scope and limit hit, and when waiting helps, how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub scope: String,
    pub hit: Hit,
    pub retry_after_ms: Option<u64>,
}

const ADMIT: &str =
    "INSERT INTO counters (scope, window_start, requests, tokens, inflight, touched_ms, period, spent_micros) \
SELECT ?1, ?2, 1, ?3, 1, ?4, ?5, ?6 WHERE ?12 \
ON CONFLICT(scope) DO UPDATE SET \
 requests = (CASE WHEN window_start = ?2 THEN requests ELSE 0 END) + 1, \
 tokens = (CASE WHEN window_start = ?2 THEN tokens ELSE 0 END) + ?3, \
 inflight = (CASE WHEN touched_ms < ?11 THEN 0 ELSE inflight END) + 1, \
 spent_micros = (CASE WHEN period = ?5 THEN spent_micros ELSE 0 END) + ?6, \
 window_start = ?2, period = ?5, touched_ms = ?4 \
WHERE (?7 < 0 OR (CASE WHEN window_start = ?2 THEN requests ELSE 0 END) + 1 <= ?7) \
 AND (?8 < 0 OR (CASE WHEN window_start = ?2 THEN tokens ELSE 0 END) + ?3 <= ?8) \
 AND (?9 < 0 OR (CASE WHEN touched_ms < ?11 THEN 0 ELSE inflight END) + 1 <= ?9) \
 AND (?10 < 0 OR (CASE WHEN period = ?5 THEN spent_micros ELSE 0 END) < ?10) \
RETURNING requests, tokens, inflight, spent_micros";

const SETTLE: &str = "UPDATE counters SET \
 requests = CASE WHEN window_start = ?2 THEN MAX(requests - ?9, 0) ELSE requests END, \
 tokens = CASE WHEN window_start = ?2 THEN MAX(tokens - ?3 + ?4, 0) ELSE tokens END, \
 inflight = MAX(inflight - 1, 0), \
 spent_micros = CASE WHEN period = ?5 THEN MAX(spent_micros - ?6 + ?7, 0) ELSE spent_micros END, \
 touched_ms = ?8 \
WHERE scope = ?1";

const READ: &str =
    "SELECT window_start, requests, tokens, inflight, touched_ms, period, spent_micros FROM counters WHERE scope = ?1";

fn limit(value: Option<u64>) -> Value {
    value.map_or(Value::Integer(-1), Value::from)
}

fn signed(value: Option<i64>) -> Value {
    Value::Integer(value.unwrap_or(-1))
}

/// Admits a request in every scope, or in none.
pub async fn admit<H: Host>(
    host: &H,
    scopes: Vec<Scope>,
    ask: Ask,
) -> Result<Result<Admission, Refusal>, ControlError> {
    let now = host.now_ms();
    // A key's and its tenant's objects are asked at once (two round trips on Workers would
    // otherwise add up); there are never more than two scopes.
    let mut scopes = scopes.into_iter();
    let tries = match (scopes.next(), scopes.next()) {
        (Some(first), Some(second)) => {
            let (a, b) =
                futures::future::join(admit_one(host, first, ask, now), admit_one(host, second, ask, now)).await;
            vec![a, b]
        }
        (Some(only), None) => vec![admit_one(host, only, ask, now).await],
        _ => Vec::new(),
    };
    let mut held = Vec::new();
    let mut refusal = None;
    let mut failure = None;
    for attempt in tries {
        match attempt {
            Ok(Ok(one)) => held.push(one),
            Ok(Err(refused)) => refusal = refusal.or(Some(refused)),
            Err(err) => failure = failure.or(Some(err)),
        }
    }
    let admission = Admission { ask, held };
    if let Some(outcome) = failure.map(Err).or(refusal.map(|r| Ok(Err(r)))) {
        release(host, &admission).await;
        return outcome;
    }
    Ok(Ok(admission))
}

async fn admit_one<H: Host>(host: &H, scope: Scope, ask: Ask, now: u64) -> Result<Result<Held, Refusal>, ControlError> {
    let window_start = limits::window_start(now);
    let period = scope.period(now);
    let budget = scope.budget_micros();
    let cost = if budget.is_some() { ask.cost_micros } else { 0 };
    let fresh = limits::refused_by(&scope.limits, budget, &Counted::default(), ask.tokens).is_none();
    let statement = Statement::new(
        ADMIT,
        vec![
            scope.name.clone().into(),
            window_start.into(),
            ask.tokens.into(),
            now.into(),
            period.clone().into(),
            cost.into(),
            limit(scope.limits.rpm),
            limit(scope.limits.tpm),
            limit(scope.limits.concurrency),
            signed(budget),
            now.saturating_sub(STALE_INFLIGHT_MS).into(),
            fresh.into(),
        ],
    );
    let rows = host.sql(Database::Counters(&scope.name), &statement).await?;
    if let Some(row) = rows.first() {
        let counted =
            Counted { requests: uint(row, 0), tokens: uint(row, 1), inflight: uint(row, 2), spent_micros: int(row, 3) };
        return Ok(Ok(Held { scope, window_start, period, counted }));
    }
    // Refused: read the row to say which limit (the answer to a refusal needs no atomicity).
    let rows =
        host.sql(Database::Counters(&scope.name), &Statement::new(READ, vec![scope.name.clone().into()])).await?;
    let counted = rows.first().map_or(Counted::default(), |row| Counted {
        requests: if uint(row, 0) == window_start { uint(row, 1) } else { 0 },
        tokens: if uint(row, 0) == window_start { uint(row, 2) } else { 0 },
        inflight: if uint(row, 4) < now.saturating_sub(STALE_INFLIGHT_MS) { 0 } else { uint(row, 3) },
        spent_micros: if super::text(row, 5).as_deref() == Some(period.as_str()) { int(row, 6) } else { 0 },
    });
    // The row may have moved on since the statement; the first limit it still breaks, else the
    // one most likely to have (requests).
    let hit = limits::refused_by(&scope.limits, budget, &counted, ask.tokens).unwrap_or(Hit::Requests);
    let retry_after_ms = match hit {
        Hit::Requests | Hit::Tokens => Some(window_start.saturating_add(limits::WINDOW_MS).saturating_sub(now)),
        Hit::Concurrency => Some(1_000),
        Hit::Budget => None,
    };
    Ok(Err(Refusal { scope: scope.name, hit, retry_after_ms }))
}

/// Gives back what an admission reserved, as if the request had not been made.
pub async fn release<H: Host>(host: &H, admission: &Admission) {
    finish(host, admission, 0, 0, true).await;
}

/// Settles an admitted request to what it really used. Failures are logged, never raised: the
/// answer has been sent.
pub async fn settle<H: Host>(host: &H, admission: &Admission, tokens: u64, cost_micros: i64) {
    finish(host, admission, tokens, cost_micros, false).await;
}

async fn finish<H: Host>(host: &H, admission: &Admission, tokens: u64, cost_micros: i64, undo: bool) {
    let now = host.now_ms();
    // One after the other: this runs after the answer, where time matters less than code size.
    for held in &admission.held {
        let (reserved, spent) =
            if held.scope.budget.is_some() { (admission.ask.cost_micros, cost_micros) } else { (0, 0) };
        let statement = Statement::new(
            SETTLE,
            vec![
                held.scope.name.clone().into(),
                held.window_start.into(),
                admission.ask.tokens.into(),
                tokens.into(),
                held.period.clone().into(),
                reserved.into(),
                spent.into(),
                now.into(),
                i64::from(undo).into(),
            ],
        );
        if let Err(err) = host.sql(Database::Counters(&held.scope.name), &statement).await {
            let error = err.to_string();
            let fields = [("scope", Field::Text(&held.scope.name)), ("error", Field::Text(&error))];
            log::warn(host, "could not settle a request's counters", &fields);
        }
    }
}
