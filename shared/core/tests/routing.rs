//! The complexity router: modes and tiers from English and Chinese prompts, no substring
//! traps, deterministic, configurable, pluggable, and measured on the labelled prompt set.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use opencode_core::model::{Message, Role};
use opencode_core::routing::{
    AnalyzerConfig, ComplexityAnalyzer, ConfigError, Mode, RouteInput, Router, RoutingDecision, Tier,
};

fn route(text: &str) -> RoutingDecision {
    ComplexityAnalyzer::default().route(&RouteInput::new(text))
}

fn mode(text: &str) -> Mode {
    route(text).mode
}

fn has_reason(decision: &RoutingDecision, needle: &str) -> bool {
    decision.reasons.iter().any(|r| r.contains(needle))
}

/// Whether a reason names a cue of this kind (`"search cue"` is not `"research cue"`).
fn has_cue_kind(decision: &RoutingDecision, kind: &str) -> bool {
    decision.reasons.iter().any(|r| r.starts_with(kind))
}

#[test]
fn modes_parse_and_print() {
    for m in Mode::ALL {
        assert_eq!(Mode::parse(m.as_str()), Some(m));
        assert_eq!(m.as_str().parse::<Mode>(), Ok(m));
        assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
    }
    assert_eq!(Mode::parse(" Research "), Some(Mode::Research));
    assert_eq!(Mode::parse("auto"), None);
    assert!("search engine".parse::<Mode>().is_err());
    assert_eq!(serde_json::to_value(Tier::System2).unwrap(), "system2");
}

#[test]
fn a_decision_serializes_as_the_api_reports_it() {
    let decision = route("Write a Python function that parses a CSV file, then add unit tests.");
    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["mode"], "code");
    assert!(json["tier"] == "system1" || json["tier"] == "system2");
    assert!(json["score"].as_f64().unwrap() > 0.0);
    assert!(json["reasons"].as_array().unwrap().iter().any(|r| r == "code cue: `python`"));
}

#[test]
fn words_are_matched_whole_not_as_substrings() {
    // "barcode" is no `code`, "research" no `search`, "decode" no `code`.
    assert_eq!(mode("I scanned a barcode on a cereal box, what do the digits mean?"), Mode::Chat);
    assert_eq!(mode("Decode this message for me: the eagle lands at dawn."), Mode::Chat);
    let research = route("Research how coral reefs recover after bleaching and write a report.");
    assert_eq!(research.mode, Mode::Research);
    assert!(!has_cue_kind(&research, "search cue"), "{:?}", research.reasons);
    assert_eq!(mode("Search the web for today's news about coral reefs."), Mode::Search);
    // Phrases cancel the word they contain.
    assert_eq!(mode("What's the zip code of the Empire State Building?"), Mode::Chat);
    assert_eq!(mode("Is there a dress code at the opera?"), Mode::Chat);
    assert_eq!(mode("How does a search engine rank pages?"), Mode::Chat);
    assert_eq!(mode("How do I get rust stains off my bike?"), Mode::Chat);
    // Case and punctuation do not matter; hyphens split words.
    assert_eq!(mode("PYTHON: reverse a list?"), Mode::Code);
    assert!(has_reason(&route("Solve it step-by-step, please."), "multi-step cue: `step by step`"));
}

#[test]
fn chinese_prompts_in_both_scripts() {
    assert_eq!(mode("用Python写一个快速排序函数。"), Mode::Code);
    assert_eq!(mode("請用Python寫一個程式，讀取CSV檔案。"), Mode::Code);
    assert_eq!(mode("今天北京的天气怎么样？"), Mode::Search);
    assert_eq!(mode("最近有什麼關於台積電的新聞？"), Mode::Search);
    assert_eq!(mode("请调研国内外大模型在医疗领域的应用，写一份研究报告。"), Mode::Research);
    assert_eq!(mode("請幫我研究台灣離岸風電產業，並撰寫一份報告。"), Mode::Research);
    assert_eq!(mode("根据公司的知识库，报销差旅费需要哪些材料？"), Mode::Knowledge);
    assert_eq!(mode("根據我們的員工手冊，加班費怎麼計算？"), Mode::Knowledge);
    assert_eq!(mode("证明：任意两个奇数之和是偶数。"), Mode::Thinking);
    assert_eq!(mode("請證明三角形的內角和為180度。"), Mode::Thinking);
    assert_eq!(mode("给我讲一个关于猫的笑话。"), Mode::Chat);
    assert_eq!(mode("謝謝你的幫忙！"), Mode::Chat);
}

#[test]
fn longer_chinese_phrases_hide_the_keywords_they_contain() {
    // 研究生 (graduate student) is not 研究 (research); 方程式 (equation) is not 程式 (program);
    // 條碼 (barcode) is not 代碼 (code).
    let student = route("我的研究生室友總是很晚睡，我該怎麼跟他溝通？");
    assert_eq!(student.mode, Mode::Chat);
    assert!(!has_cue_kind(&student, "research cue"), "{:?}", student.reasons);
    assert_eq!(mode("這個方程式怎麼解：x + 3 = 5？"), Mode::Thinking);
    assert_eq!(mode("商品條碼上的數字是什麼意思？"), Mode::Chat);
    // 研究 never counts as a search cue.
    let research = route("研究一下全球半导体供应链的风险。");
    assert!(has_reason(&research, "research cue: `研究`"), "{:?}", research.reasons);
    assert!(!has_cue_kind(&research, "search cue"), "{:?}", research.reasons);
}

#[test]
fn tiers_follow_complexity() {
    let short = route("Hi! How are you?");
    assert_eq!((short.mode, short.tier), (Mode::Chat, Tier::System1));
    let report = route(
        "Research the current state of solid-state batteries and write an in-depth report with \
         citations, comparing the five largest manufacturers.",
    );
    assert_eq!((report.mode, report.tier), (Mode::Research, Tier::System2));
    let trivial_code = route("print hello world in python");
    assert_eq!((trivial_code.mode, trivial_code.tier), (Mode::Code, Tier::System1));
    let big_code = route(
        "Implement a thread-safe LRU cache in Rust with generics, write unit tests for the \
         eviction order, then compare its performance against a mutex-wrapped HashMap.",
    );
    assert_eq!((big_code.mode, big_code.tier), (Mode::Code, Tier::System2));
    let proof = route("Prove that there are infinitely many primes.");
    assert_eq!((proof.mode, proof.tier), (Mode::Thinking, Tier::System2));
    assert!(short.score < big_code.score);
    for d in [&short, &report, &trivial_code, &big_code, &proof] {
        assert!((0.0..=1.0).contains(&d.score), "{d:?}");
    }
}

#[test]
fn reasons_name_their_cues() {
    let long = format!("Please compare these two designs. {}", "The first one is slower. ".repeat(60));
    let decision = route(&long);
    assert!(has_reason(&decision, "multi-step cue: `compare`"), "{:?}", decision.reasons);
    let chars = long.chars().count();
    assert!(has_reason(&decision, &format!("long prompt: {chars} chars")), "{:?}", decision.reasons);
    let code = route("```python\nprint(1)\n```\nWhy does this print 1?");
    assert!(has_reason(&code, "code cue: code block"), "{:?}", code.reasons);
    assert!(decision.reasons.last().unwrap().starts_with("score "));
}

#[test]
fn longer_conversations_score_higher() {
    let analyzer = ComplexityAnalyzer::default();
    let one = RouteInput::new("And what about the second option?");
    let many = RouteInput { message_count: 15, ..one };
    assert!(analyzer.score(&many) > analyzer.score(&one));
    let messages = vec![
        Message::new(Role::System, "Be brief."),
        Message::new(Role::User, "Tell me a joke."),
        Message::new(Role::Assistant, "Why did the chicken..."),
        Message::new(Role::User, "What's the latest news on Mars?"),
    ];
    let input = RouteInput::from_messages(&messages);
    assert_eq!(input.text, "What's the latest news on Mars?");
    assert_eq!(input.message_count, 4);
    assert_eq!(analyzer.route(&input).mode, Mode::Search);
    assert_eq!(RouteInput::from_messages(&[]).text, "");
}

#[test]
fn routing_is_deterministic_and_score_matches_route() {
    let analyzer = ComplexityAnalyzer::default();
    for text in ["", "?", "```", "研究生", "a b c d e f", "Prove 2+2=4 step by step, then plan."] {
        let input = RouteInput::new(text);
        let first = analyzer.route(&input);
        assert_eq!(first, analyzer.route(&input));
        assert_eq!(first, ComplexityAnalyzer::default().route(&input));
        assert_eq!(first.score, analyzer.score(&input));
        assert_eq!(first.score, Router::score(&analyzer, &input));
    }
}

#[test]
fn odd_input_never_panics() {
    let analyzer = ComplexityAnalyzer::default();
    let odd = [
        "\u{0}\u{FEFF}\u{10FFFF}",
        "😀😀😀 emoji only 😀",
        "Ünïcödé wörds ärë fïnë, naïve café",
        "1.\n2)\n- \n* \n• ",
        &"研".repeat(5000),
        &"a ".repeat(10000),
        "`````````` ;;;; {{{{ }}}} [[[[",
        "ー々〆ヵヶ ひらがな カタカナ 한국어",
    ];
    for text in odd {
        let d = analyzer.route(&RouteInput::new(text));
        assert!((0.0..=1.0).contains(&d.score), "{d:?}");
    }
}

#[test]
fn configuration_moves_the_threshold_and_weights() {
    let prompt = RouteInput::new("Compare Postgres and MySQL for a small web app.");
    let default = ComplexityAnalyzer::default().route(&prompt);
    let strict =
        ComplexityAnalyzer::from_json(&format!(r#"{{"threshold": {}}}"#, default.score + 0.01)).unwrap().route(&prompt);
    let lax = ComplexityAnalyzer::from_json(&format!(r#"{{"threshold": {}}}"#, default.score)).unwrap().route(&prompt);
    assert_eq!(strict.score, default.score);
    assert_eq!(strict.tier, Tier::System1);
    assert_eq!(lax.tier, Tier::System2);
    assert_eq!(ComplexityAnalyzer::from_json(r#"{"threshold": 0}"#).unwrap().route(&prompt).tier, Tier::System2);
    assert_eq!(ComplexityAnalyzer::from_json(r#"{"threshold": 1}"#).unwrap().route(&prompt).tier, Tier::System1);

    // Weights move the score; mode scales move the mode.
    let heavier = ComplexityAnalyzer::from_json(r#"{"step_weight": 2.0}"#).unwrap();
    assert!(heavier.score(&prompt) > default.score);
    let mixed = RouteInput::new("Search for the latest research papers on graphene.");
    assert_eq!(ComplexityAnalyzer::default().route(&mixed).mode, Mode::Research);
    let prefer_search = ComplexityAnalyzer::from_json(r#"{"mode_scale": {"research": 0.1}}"#).unwrap();
    assert_eq!(prefer_search.route(&mixed).mode, Mode::Search);
    assert_eq!(prefer_search.config().mode_scale.search, 1.0);

    // Missing fields keep defaults; bad ones are rejected, not clamped.
    assert_eq!(AnalyzerConfig::from_json("{}").unwrap(), AnalyzerConfig::default());
    assert!(matches!(AnalyzerConfig::from_json(r#"{"threshold": 1.5}"#), Err(ConfigError::OutOfRange("threshold"))));
    assert!(matches!(AnalyzerConfig::from_json(r#"{"code_bias": -1}"#), Err(ConfigError::OutOfRange("code_bias"))));
    assert!(matches!(AnalyzerConfig::from_json(r#"{"treshold": 0.4}"#), Err(ConfigError::Json(_))));
    assert!(matches!(AnalyzerConfig::from_json("not json"), Err(ConfigError::Json(_))));
}

/// A user strategy: everything with a question mark is thinking on System 2.
struct QuestionsAreHard;

impl Router for QuestionsAreHard {
    fn route(&self, input: &RouteInput<'_>) -> RoutingDecision {
        let hard = input.text.contains('?');
        RoutingDecision {
            mode: if hard { Mode::Thinking } else { Mode::Chat },
            tier: if hard { Tier::System2 } else { Tier::System1 },
            score: if hard { 1.0 } else { 0.0 },
            reasons: vec![format!("question mark: {hard}")],
        }
    }
}

fn decide(router: &dyn Router, text: &str) -> RoutingDecision {
    router.route(&RouteInput::new(text))
}

#[test]
fn a_custom_router_plugs_in() {
    let routers: Vec<Box<dyn Router>> = vec![Box::new(QuestionsAreHard), Box::new(ComplexityAnalyzer::default())];
    let custom = decide(routers[0].as_ref(), "Hello?");
    assert_eq!((custom.mode, custom.tier), (Mode::Thinking, Tier::System2));
    assert_eq!(routers[0].score(&RouteInput::new("Hello.")), 0.0);
    assert_eq!(decide(&routers[1], "Hello?").mode, Mode::Chat);
}

/// The lexicon's accuracy on the first 231 prompts of `tests/routing/prompts.jsonl` (the ones
/// it was written beside), 38 to 40 per mode, English and both Chinese scripts (89 with CJK),
/// adversarial cases included. The 792 written since for the learned router are new to it
/// (`router-train report` prints its figures on them: about 67% mode, 63% tier).
///
/// Measured with the default configuration:
/// mode 97.0%, tier 92.2%, every mode's recall at least 92%. That figure is in-sample: the
/// lexicon was written alongside the first 135 prompts. The last 96 were written in two
/// batches and measured before the lexicon saw them: mode 86.7% (60 prompts) and 86.1%
/// (36 prompts), tier 85.0% and 94.4%. Expect about 86% mode accuracy on new prompts.
/// The floors below guard against regressions, a few points under the measurement.
#[test]
fn accuracy_on_the_labelled_prompt_set() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/routing/prompts.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let analyzer = ComplexityAnalyzer::default();
    let (mut total, mut modes, mut tiers) = (0, 0, 0);
    let mut per_mode = std::collections::BTreeMap::<String, (u32, u32)>::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(231) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let want_mode = Mode::parse(row["mode"].as_str().unwrap()).unwrap();
        let want_tier: Tier = serde_json::from_value(row["tier"].clone()).unwrap();
        let got = analyzer.route(&RouteInput::new(row["prompt"].as_str().unwrap()));
        total += 1;
        modes += u32::from(got.mode == want_mode);
        tiers += u32::from(got.tier == want_tier);
        let entry = per_mode.entry(want_mode.to_string()).or_default();
        entry.0 += u32::from(got.mode == want_mode);
        entry.1 += 1;
    }
    assert!(total >= 120, "{total} prompts");
    let mode_accuracy = f64::from(modes) / f64::from(total);
    let tier_accuracy = f64::from(tiers) / f64::from(total);
    assert!(mode_accuracy >= MODE_FLOOR, "mode accuracy {mode_accuracy:.3} ({per_mode:?})");
    assert!(tier_accuracy >= TIER_FLOOR, "tier accuracy {tier_accuracy:.3}");
    for (mode, (right, all)) in per_mode {
        let recall = f64::from(right) / f64::from(all);
        assert!(recall >= PER_MODE_FLOOR, "{mode}: recall {recall:.2}");
    }
}

const MODE_FLOOR: f64 = 0.93;
const TIER_FLOOR: f64 = 0.88;
const PER_MODE_FLOOR: f64 = 0.85;
