//! The build step that compiles `config/cognitive_features.yaml` (`build.rs` runs this same
//! code and fails the build with its error): the repository's file compiles to the defaults
//! the crate carries, and an unknown key, a wrong type or a missing key is refused by path.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, dead_code)]

#[path = "../build/flags_file.rs"]
mod flags_file;
#[path = "../src/flags/schema.rs"]
mod schema;

use opencode_core::flags::{Flag, Flags, Value};

fn repo_file() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/cognitive_features.yaml")).unwrap()
}

#[test]
fn the_repositorys_file_is_what_the_crate_carries() {
    let source = flags_file::compile(&repo_file()).unwrap();
    let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/flag_defaults.rs"));
    // The build script wrote the same source (when OPENCODE_FLAGS_FILE did not name another).
    if let Ok(generated) = generated {
        assert_eq!(source, generated);
    }
    let flags = Flags::default();
    assert_eq!(flags.value(Flag::Enabled), Value::Bool(true));
    assert_eq!(flags.value(Flag::CacheTtl), Value::Number(3600.0));
    assert_eq!(flags.value(Flag::Router), Value::Choice("learned"));
    assert_eq!(Flag::ALL.len(), schema::KEYS.len());
    for (flag, key) in Flag::ALL.iter().zip(schema::KEYS) {
        assert!(source.contains(&format!("// {}\n", key.path)), "{flag:?}");
    }
}

fn refused(edit: impl Fn(&str) -> String) -> String {
    flags_file::compile(&edit(&repo_file())).unwrap_err().to_string()
}

#[test]
fn a_bad_file_fails_with_the_keys_path() {
    let unknown = refused(|f| f.replace("    cache_ttl: 3600", "    cache_ttl: 3600\n    cache_tll: 5"));
    assert_eq!(unknown, "`cognitive_features.system1.cache_tll`: unknown key: no flag of that name");
    let top = refused(|f| format!("{f}\nextras:\n  on: true\n"));
    assert_eq!(top, "`extras`: unknown key: no flag of that name");
    let wrong = refused(|f| f.replace("enable_cache: true", "enable_cache: sometimes"));
    assert_eq!(wrong, "`cognitive_features.system1.enable_cache`: must be true or false");
    let number = refused(|f| f.replace("max_steps: 8", "max_steps: 8.5"));
    assert_eq!(number, "`platform.agent.max_steps`: must be a whole number from 1 to 100");
    let choice = refused(|f| f.replace("router: learned", "router: clever"));
    assert_eq!(choice, "`platform.router`: must be one of learned, lexicon, length, rules");
    let missing =
        refused(|f| f.replace("    reflection_depth: 2          # most times code mode fixes a failed run\n", ""));
    assert_eq!(
        missing,
        "`cognitive_features.system2.reflection_depth`: missing: every flag has its default in the file"
    );
    let mapping = refused(|f| f.replace("  modes:\n", "  modes: 3\n  old_modes:\n"));
    assert!(mapping.starts_with("`platform.modes`: must be a mapping"), "{mapping}");
    let null = refused(|f| f.replace("enabled: true", "enabled:"));
    assert_eq!(null, "`cognitive_features.enabled`: must be true or false");
    assert!(flags_file::compile("a: [1").unwrap_err().to_string().starts_with("not YAML"));
}

#[test]
fn a_partial_document_from_the_admin_api_is_read_by_the_same_schema() {
    let doc = serde_json::json!({"cognitive_features": {"system1": {"cache_ttl": 60, "enable_cache": null}}});
    let found = opencode_core::flags::read_document(&doc, false).unwrap();
    assert_eq!(found, vec![(Flag::CacheTtl, Some(Value::Number(60.0))), (Flag::Cache, None)]);
    let mut flags = Flags::default();
    flags.apply(&found, opencode_core::flags::Source::Tenant);
    assert_eq!(flags.whole(Flag::CacheTtl), 60);
    assert_eq!(flags.source(Flag::CacheTtl), opencode_core::flags::Source::Tenant);
    assert_eq!(flags.source(Flag::Cache), opencode_core::flags::Source::File);
    // The master switch turns every cognitive switch off, and not the platform's own.
    flags.set(Flag::Enabled, Value::Bool(false), opencode_core::flags::Source::Platform);
    assert!(!flags.on(Flag::Cache) && !flags.on(Flag::SmartRouting));
    assert!(flags.on(Flag::ModeChat));
}

#[test]
fn a_variable_sets_its_flag_in_the_flags_unit() {
    let mut flags = Flags::default();
    flags.set_variable(Flag::MaxThinkingTime, "2500").unwrap();
    assert_eq!(flags.number(Flag::MaxThinkingTime), 2.5);
    assert_eq!(flags.source(Flag::MaxThinkingTime), opencode_core::flags::Source::Variable("AGENT_MAX_TIME_MS"));
    let err = flags.set_variable(Flag::AgentMaxSteps, "7.5").unwrap_err();
    assert_eq!(err, "AGENT_MAX_STEPS (platform.agent.max_steps): must be a whole number from 1 to 100");
    assert!(flags.set_variable(Flag::Router, "rules").is_ok());
    assert_eq!(flags.choice(Flag::Router), "rules");
}
