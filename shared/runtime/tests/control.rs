//! The control plane's SQL on real SQLite (the testkit's): exact counters, keys, the ledger.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use opencode_core::access::Role;
use opencode_core::limits::{Budget, Hit, Limits, Period};
use opencode_runtime::control::counters::{self, Ask, Scope};
use opencode_runtime::control::keys::{self, KeySettings};
use opencode_runtime::control::ledger::{self, GroupBy, UsageRow};
use opencode_runtime::control::{audit, tenants};
use opencode_runtime::Host as _;
use opencode_testkit::{TestHost, EPOCH_MS};

fn scope(name: &str, limits: Limits, budget: Option<Budget>) -> Scope {
    Scope { name: name.into(), limits, budget }
}

#[tokio::test]
async fn thirty_requests_against_ten_a_minute_admit_exactly_ten_until_the_next_minute() {
    let host = TestHost::new();
    host.set_now_ms(Some(EPOCH_MS + 5_000));
    let limits = Limits { rpm: Some(10), ..Limits::default() };
    let tries = (0..30).map(|_| counters::admit(&host, vec![scope("key:a", limits, None)], Ask::default()));
    let outcomes = futures::future::join_all(tries).await;
    let admitted: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().unwrap().as_ref().ok()).collect();
    assert_eq!(admitted.len(), 10);
    let refused = outcomes.iter().find_map(|o| o.as_ref().unwrap().as_ref().err()).unwrap();
    assert_eq!(refused.hit, Hit::Requests);
    assert_eq!(refused.retry_after_ms, Some(55_000));
    assert_eq!(admitted.last().unwrap().held[0].counted.requests, 10);

    host.set_now_ms(Some(EPOCH_MS + 61_000));
    let next = counters::admit(&host, vec![scope("key:a", limits, None)], Ask::default()).await.unwrap().unwrap();
    assert_eq!(next.held[0].counted.requests, 1, "a new minute counts afresh");
}

#[tokio::test]
async fn concurrency_is_given_back_when_a_request_settles() {
    let host = TestHost::new();
    host.set_now_ms(Some(EPOCH_MS));
    let limits = Limits { concurrency: Some(2), ..Limits::default() };
    let first = counters::admit(&host, vec![scope("key:c", limits, None)], Ask::default()).await.unwrap().unwrap();
    counters::admit(&host, vec![scope("key:c", limits, None)], Ask::default()).await.unwrap().unwrap();
    let third = counters::admit(&host, vec![scope("key:c", limits, None)], Ask::default()).await.unwrap();
    assert_eq!(third.unwrap_err().hit, Hit::Concurrency);
    counters::settle(&host, &first, 0, 0).await;
    counters::admit(&host, vec![scope("key:c", limits, None)], Ask::default()).await.unwrap().unwrap();
}

#[tokio::test]
async fn tokens_are_reserved_then_settled_to_what_was_used() {
    let host = TestHost::new();
    host.set_now_ms(Some(EPOCH_MS));
    let limits = Limits { tpm: Some(1_000), ..Limits::default() };
    let ask = Ask { tokens: 600, cost_micros: 0 };
    let first = counters::admit(&host, vec![scope("key:t", limits, None)], ask).await.unwrap().unwrap();
    let refused = counters::admit(&host, vec![scope("key:t", limits, None)], ask).await.unwrap().unwrap_err();
    assert_eq!(refused.hit, Hit::Tokens);
    counters::settle(&host, &first, 100, 0).await;
    let second = counters::admit(&host, vec![scope("key:t", limits, None)], ask).await.unwrap().unwrap();
    assert_eq!(second.held[0].counted.tokens, 700);
}

#[tokio::test]
async fn a_budget_is_passed_by_at_most_one_request_and_resets_with_its_period() {
    let host = TestHost::new();
    host.set_now_ms(Some(EPOCH_MS));
    let budget = Some(Budget { usd: 1.0, period: Period::Day });
    let ask = Ask { tokens: 10, cost_micros: 400_000 };
    let mut admitted = Vec::new();
    for _ in 0..5 {
        if let Ok(admission) =
            counters::admit(&host, vec![scope("tenant:b", Limits::default(), budget)], ask).await.unwrap()
        {
            admitted.push(admission);
        }
    }
    assert_eq!(admitted.len(), 3, "0, 0.4 and 0.8 are under 1.0; 1.2 is not");
    for admission in &admitted {
        counters::settle(&host, admission, 10, 350_000).await;
    }
    let refused = counters::admit(&host, vec![scope("tenant:b", Limits::default(), budget)], ask).await.unwrap();
    assert_eq!(refused.unwrap_err().hit, Hit::Budget, "1.05 spent");
    assert_eq!(refused_retry(&host, budget).await, None);
    host.set_now_ms(Some(EPOCH_MS + 86_400_000));
    counters::admit(&host, vec![scope("tenant:b", Limits::default(), budget)], ask).await.unwrap().unwrap();
}

async fn refused_retry(host: &TestHost, budget: Option<Budget>) -> Option<u64> {
    let ask = Ask { tokens: 1, cost_micros: 1 };
    counters::admit(host, vec![scope("tenant:b", Limits::default(), budget)], ask)
        .await
        .unwrap()
        .unwrap_err()
        .retry_after_ms
}

#[tokio::test]
async fn a_request_one_scope_refuses_holds_nothing_in_the_others() {
    let host = TestHost::new();
    host.set_now_ms(Some(EPOCH_MS));
    let key = Limits { rpm: Some(5), ..Limits::default() };
    let tenant = Limits { rpm: Some(2), ..Limits::default() };
    let scopes = || vec![scope("key:k", key, None), scope("tenant:t", tenant, None)];
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(counters::admit(&host, scopes(), Ask::default()).await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2);
    assert_eq!(outcomes[3].as_ref().unwrap_err().scope, "tenant:t");
    // The key scope kept only the two admitted requests: three more fit its limit of five.
    let alone = || vec![scope("key:k", key, None)];
    for _ in 0..3 {
        counters::admit(&host, alone(), Ask::default()).await.unwrap().unwrap();
    }
    assert!(counters::admit(&host, alone(), Ask::default()).await.unwrap().is_err());
}

fn settings(role: Role) -> KeySettings {
    KeySettings {
        name: "ci".into(),
        role,
        modes: Some(vec!["chat".into()]),
        models: None,
        limits: Limits { rpm: Some(3), ..Limits::default() },
        budget: None,
        expires_at: None,
    }
}

#[tokio::test]
async fn keys_are_stored_as_hashes_found_by_the_key_and_revoked() {
    let host = TestHost::new();
    let (key, record) = keys::create(&host, "acme", &settings(Role::Member), "alice").await.unwrap();
    assert!(key.starts_with("ock_") && record.id.starts_with("key_"));
    let found = keys::find_by_key(&host, &key).await.unwrap().unwrap();
    assert_eq!(*found, record);
    assert!(found.is_live(host.now_ms()));
    assert_eq!(keys::get(&host, Some("other"), &record.id).await.unwrap(), None, "another tenant's key is not found");
    assert!(keys::find_by_key(&host, "ock_0000000000000000000000000000000000000000").await.unwrap().is_none());

    assert!(keys::revoke(&host, Some("acme"), &record.id).await.unwrap());
    let revoked = keys::find_by_key(&host, &key).await.unwrap().unwrap();
    assert!(!revoked.is_live(host.now_ms()));
    assert!(!keys::revoke(&host, Some("other"), &record.id).await.unwrap());

    let (_, second) = keys::create(&host, "acme", &settings(Role::Admin), "alice").await.unwrap();
    let listed = keys::list(&host, Some("acme"), 10, None).await.unwrap();
    assert_eq!(listed.len(), 2);
    let page = keys::list(&host, Some("acme"), 1, Some(&listed[0].id)).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_ne!(page[0].id, listed[0].id);
    assert!(listed.iter().any(|k| k.id == second.id));
}

#[tokio::test]
async fn the_ledger_sums_by_any_grouping_and_pages_its_rows() {
    let host = TestHost::new();
    for (i, (tenant, model, cost)) in [("a", "m1", 0.5), ("a", "m2", 0.25), ("b", "m1", 1.0)].into_iter().enumerate() {
        let row = UsageRow {
            request_id: format!("r{i}"),
            ts: EPOCH_MS + i as u64 * 3_600_000,
            tenant: tenant.into(),
            subject: "s".into(),
            mode: "chat".into(),
            tier: "system1".into(),
            model: Some(model.into()),
            provider: Some("openai".into()),
            status: if i == 2 { "error".into() } else { "ok".into() },
            input_tokens: 10,
            output_tokens: 5,
            cost_usd: cost,
            ..UsageRow::default()
        };
        ledger::record(&host, &row).await.unwrap();
    }
    let all =
        ledger::report(&host, None, EPOCH_MS, EPOCH_MS + 86_400_000, &[GroupBy::Tenant, GroupBy::Model]).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].groups, vec![Some("a".to_string()), Some("m1".to_string())]);
    let hours = ledger::report(&host, Some("a"), EPOCH_MS, EPOCH_MS + 86_400_000, &[GroupBy::Hour]).await.unwrap();
    assert_eq!(hours[1].groups, vec![Some("2026-01-01T01:00:00Z".to_string())]);
    let total = ledger::report(&host, None, EPOCH_MS, EPOCH_MS + 86_400_000, &[]).await.unwrap();
    assert_eq!((total[0].totals.requests, total[0].totals.errors, total[0].totals.input_tokens), (3, 1, 30));
    assert!((total[0].totals.cost_usd - 1.75).abs() < 1e-9);
    assert!(ledger::report(&host, Some("zzz"), EPOCH_MS, EPOCH_MS + 1, &[]).await.unwrap().is_empty());
    let newest = ledger::requests(&host, Some("a"), 1, None).await.unwrap();
    assert_eq!(newest[0].request_id, "r1");
    let older = ledger::requests(&host, Some("a"), 5, Some(newest[0].id)).await.unwrap();
    assert_eq!(older.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(), vec!["r0"]);
}

#[tokio::test]
async fn tenant_limits_and_audit_entries_round_trip() {
    let host = TestHost::new();
    assert!(tenants::get(&host, "acme").await.unwrap().limits.is_empty());
    let limits = Limits { rpm: Some(100), tpm: None, concurrency: Some(4) };
    let budget = Budget { usd: 50.0, period: Period::Month };
    tenants::put(&host, "acme", &limits, Some(&budget), "root").await.unwrap();
    let read = tenants::get(&host, "acme").await.unwrap();
    assert_eq!((read.limits, read.budget), (limits, Some(budget)));
    let entry = audit::AuditEntry {
        ts: 1,
        action: "limits.update".into(),
        actor: "root".into(),
        tenant: "acme".into(),
        request_id: "r".into(),
        ..Default::default()
    };
    audit::record(&host, &entry).await.unwrap();
    audit::record(&host, &audit::AuditEntry { tenant: "other".into(), ..entry.clone() }).await.unwrap();
    let listed = audit::list(&host, Some("acme"), 10, None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].action, "limits.update");
    assert_eq!(audit::sample_refusal(1_000), Some(1));
    assert_eq!(audit::sample_refusal(2_000), None);
    assert_eq!(audit::sample_refusal(12_000), Some(2));
}
