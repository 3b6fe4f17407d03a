//! Configuration: which providers join the chain, and how a requested model picks one.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use opencode_core::providers::ProviderConfig;
use opencode_runtime::config::Config;
use opencode_testkit::TestHost;

fn names(chain: &[ProviderConfig]) -> Vec<(&str, &str)> {
    chain.iter().map(|p| (p.name.as_str(), p.model.as_str())).collect()
}

#[test]
fn only_callable_providers_join_the_chain_in_order() {
    let host = TestHost::new()
        .with_var("ANTHROPIC_API_KEY", "a")
        .with_var("GEMINI_API_KEY", "g")
        .with_var("COMPAT_BASE_URL", "http://127.0.0.1:11434/v1")
        .with_var("PROVIDER_ORDER", "gemini, openai,anthropic,compat");
    let config = Config::from_host(&host).unwrap();
    assert_eq!(
        names(&config.chain),
        vec![("gemini", "gemini-2.5-flash"), ("anthropic", "claude-haiku-4-5"), ("compat", "llama3.2")]
    );
    assert_eq!(config.chain[2].api_key, None);
}

#[test]
fn bad_values_name_the_variable_not_the_value() {
    let host = TestHost::new().with_var("PROVIDER_ORDER", "openai,mistral");
    let err = Config::from_host(&host).unwrap_err().to_string();
    assert!(err.contains("`mistral`"), "{err}");
    let host = TestHost::new().with_var("MAX_RETRIES", "lots");
    let err = Config::from_host(&host).unwrap_err().to_string();
    assert!(err.contains("MAX_RETRIES"), "{err}");
}

#[test]
fn a_model_pins_its_provider_first() {
    let host = TestHost::new()
        .with_var("OPENAI_API_KEY", "o")
        .with_var("ANTHROPIC_API_KEY", "a")
        .with_var("GEMINI_API_KEY", "g");
    let config = Config::from_host(&host).unwrap();
    let chain = config.chain_for(Some("claude-sonnet-4-5")).unwrap();
    assert_eq!(names(&chain)[0], ("anthropic", "claude-sonnet-4-5"));
    assert_eq!(names(&chain)[1], ("openai", "gpt-4.1-mini"));
    let chain = config.chain_for(Some("gemini/gemini-2.5-pro")).unwrap();
    assert_eq!(names(&chain)[0], ("gemini", "gemini-2.5-pro"));
    let chain = config.chain_for(Some("o3-mini")).unwrap();
    assert_eq!(names(&chain)[0], ("openai", "o3-mini"));
    let chain = config.chain_for(Some("my-finetune")).unwrap();
    assert_eq!(names(&chain)[0], ("openai", "my-finetune"));
    assert_eq!(chain.len(), 3);
    let host = TestHost::new().with_var("OPENAI_API_KEY", "o");
    let config = Config::from_host(&host).unwrap();
    assert!(config.chain_for(Some("claude-3")).is_err());
}

#[test]
fn thinking_runs_openai_on_a_reasoning_model_unless_one_was_chosen() {
    let keys = || {
        TestHost::new()
            .with_var("OPENAI_API_KEY", "o")
            .with_var("ANTHROPIC_API_KEY", "a")
            .with_var("GEMINI_API_KEY", "g")
    };
    let config = Config::from_host(&keys()).unwrap();
    // OpenAI's default chat model refuses `reasoning_effort`; the others reason as they are.
    assert_eq!(
        names(&config.reasoning_chain_for(None).unwrap()),
        vec![("openai", "gpt-5-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash")]
    );
    assert_eq!(names(&config.chain_for(None).unwrap())[0], ("openai", "gpt-4.1-mini"), "chat keeps its model");
    let priced = config.reasoning_chain_for(None).unwrap();
    assert!(priced[0].price.is_some(), "the reasoning model is priced");

    // A model the operator set is used as it is, even one that cannot reason.
    let config = Config::from_host(&keys().with_var("OPENAI_MODEL", "gpt-4.1-mini")).unwrap();
    assert_eq!(names(&config.reasoning_chain_for(None).unwrap())[0], ("openai", "gpt-4.1-mini"));
    let config = Config::from_host(&keys().with_var("OPENAI_MODEL", "o3")).unwrap();
    assert_eq!(names(&config.reasoning_chain_for(None).unwrap())[0], ("openai", "o3"));

    // A requested model pins its provider; the rest keep their reasoning models.
    let config = Config::from_host(&keys()).unwrap();
    let chain = config.reasoning_chain_for(Some("claude-sonnet-4-5")).unwrap();
    assert_eq!(names(&chain)[..2], [("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-5-mini")]);
}

/// Every variable the platform reads reaches every runtime: the list in `config::VARIABLES`,
/// the Workers' `scripts/cloudflare/config-vars`, Spin's `[variables]` and every component's
/// variables in `spin.toml` name the same set.
#[test]
fn every_variable_is_declared_for_both_runtimes() {
    use std::collections::BTreeSet;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let listed: BTreeSet<String> = opencode_runtime::config::VARIABLES.iter().map(|v| v.to_string()).collect();

    let workers: BTreeSet<String> = read("scripts/cloudflare/config-vars")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert_eq!(workers, listed, "scripts/cloudflare/config-vars");

    let manifest = read("spin.toml");
    let mut tables: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            tables.push((line.to_owned(), BTreeSet::new()));
        } else if let (Some((name, _)), Some((_, set))) = (line.split_once('='), tables.last_mut()) {
            set.insert(name.trim().to_uppercase());
        }
    }
    let declared = tables.iter().find(|(t, _)| t == "[variables]").map(|(_, set)| set.clone()).unwrap();
    assert_eq!(declared, listed, "spin.toml [variables]");
    let components: Vec<_> = tables.iter().filter(|(t, _)| t.ends_with(".variables]")).collect();
    assert_eq!(components.len(), 9, "one variables table per function");
    for (table, set) in components {
        assert_eq!(set, &listed, "spin.toml {table}");
    }
}
