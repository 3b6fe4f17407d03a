//! Routers chosen by configuration (the seed's "custom routers"): which router decides
//! (`learned`, `lexicon`, `length` or `rules`), where its System 2 threshold sits (a score, or
//! the share of strong calls it should spend), and rules tried before it.
//!
//! Settings come in layers — the platform's, a tenant's, an A/B variant's — each naming only
//! what it changes ([`RouterSettings::over`]).

use serde_json::{Map, Value};

use super::analyzer::{AnalyzerConfig, ComplexityAnalyzer};
use super::learned::{threshold_for_share, LearnedRouter};
use super::learned_weights::{LENGTH_SHARE_THRESHOLDS, LEXICON_SHARE_THRESHOLDS};
use super::{Mode, RouteInput, Router, RoutingDecision, Tier};

/// Which router decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// The learned scorer (the default).
    Learned,
    /// The ComplexityAnalyzer's keyword and signal score.
    Lexicon,
    /// Prompt length alone for the tier (the baseline), the learned model for the mode.
    Length,
    /// The rules, and the learned router where none matches.
    Rules,
}

impl Rule {
    /// Parses a JSON list of rules (`what` names it in errors).
    pub fn list(value: &Value, what: &str) -> Result<Vec<Rule>, SettingsError> {
        let Some(items) = value.as_array() else {
            return json::invalid(format!("{what}: the rules must be a JSON list of {{match, mode?, tier?}}"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Rule::from_value(item, &format!("rule {}", i.saturating_add(1))))
            .collect()
    }

    fn from_value(value: &Value, what: &str) -> Result<Rule, SettingsError> {
        let map = json::object(value, what, &["match", "mode", "tier"])?;
        let phrases: Vec<String> = match map.get("match") {
            Some(Value::String(phrase)) => vec![phrase.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect(),
            _ => return json::invalid(format!("{what}: `match` must be a phrase or a list of phrases")),
        };
        if phrases.is_empty() || phrases.iter().any(|p| p.trim().is_empty()) {
            return json::invalid(format!("{what}: `match` needs non-empty phrases"));
        }
        let mode = match json::string(map, "mode", what)? {
            None => None,
            Some(name) => {
                Some(Mode::parse(name).ok_or(SettingsError::Invalid(format!("{what}: unknown mode `{name}`")))?)
            }
        };
        let tier = match json::string(map, "tier", what)? {
            None => None,
            Some("system1") => Some(Tier::System1),
            Some("system2") => Some(Tier::System2),
            Some(_) => return json::invalid(format!("{what}: `tier` must be system1 or system2")),
        };
        if mode.is_none() && tier.is_none() {
            return json::invalid(format!("{what}: name a `mode`, a `tier` or both"));
        }
        Ok(Rule { phrases, mode, tier })
    }
}

impl RouterKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            RouterKind::Learned => "learned",
            RouterKind::Lexicon => "lexicon",
            RouterKind::Length => "length",
            RouterKind::Rules => "rules",
        }
    }

    /// Parses `learned`, `lexicon`, `length` or `rules` (any case).
    pub fn parse(name: &str) -> Option<RouterKind> {
        [RouterKind::Learned, RouterKind::Lexicon, RouterKind::Length, RouterKind::Rules]
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// `{"match": "invoice" | ["invoice", "發票"], "mode"?: "knowledge", "tier"?: "system1"}`:
/// when the text contains a phrase (ASCII case ignored), the rule decides what it names; the
/// router decides the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub phrases: Vec<String>,
    pub mode: Option<Mode>,
    pub tier: Option<Tier>,
}

/// One layer of routing settings; every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouterSettings {
    pub router: Option<RouterKind>,
    /// The share of System 2 calls to spend, in `[0, 1]` (measured on the labelled prompts).
    pub strong_share: Option<f64>,
    /// The System 2 threshold on the router's score, in `[0, 1]`.
    pub threshold: Option<f64>,
    pub rules: Option<Vec<Rule>>,
}

/// Why routing settings were refused (the message names the field, never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
}

/// Read by hand over `serde_json::Value`, which every function links anyway: serde's derived
/// deserializers cost each function several KiB of Wasm.
mod json {
    use super::{Map, SettingsError, Value};

    pub fn invalid<T>(message: String) -> Result<T, SettingsError> {
        Err(SettingsError::Invalid(message))
    }

    /// `value` as an object holding only `allowed` keys.
    pub fn object<'v>(value: &'v Value, what: &str, allowed: &[&str]) -> Result<&'v Map<String, Value>, SettingsError> {
        let Some(map) = value.as_object() else { return invalid(format!("{what} must be a JSON object")) };
        match map.keys().find(|key| !allowed.contains(&key.as_str())) {
            Some(key) => invalid(format!("{what}: unknown field `{key}` (expected {})", allowed.join(", "))),
            None => Ok(map),
        }
    }

    pub fn number(map: &Map<String, Value>, key: &str, what: &str) -> Result<Option<f64>, SettingsError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                value.as_f64().map(Some).ok_or(SettingsError::Invalid(format!("{what}: `{key}` must be a number")))
            }
        }
    }

    pub fn string<'v>(map: &'v Map<String, Value>, key: &str, what: &str) -> Result<Option<&'v str>, SettingsError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                value.as_str().map(Some).ok_or(SettingsError::Invalid(format!("{what}: `{key}` must be a string")))
            }
        }
    }
}

impl RouterSettings {
    /// Parses one layer, `{"router"?, "strong_share"?, "threshold"?, "rules"?}` (`what` names
    /// it in errors), and checks its ranges. Whether the `rules` router has rules is a question
    /// for the layers together (a tenant may pick it over the platform's rules):
    /// [`ConfiguredRouter::new`] asks it.
    pub fn from_value(value: &Value, what: &str) -> Result<RouterSettings, SettingsError> {
        let map = json::object(value, what, &["router", "strong_share", "threshold", "rules"])?;
        let router = match json::string(map, "router", what)? {
            None => None,
            Some(name) => Some(RouterKind::parse(name).ok_or(SettingsError::Invalid(format!(
                "{what}: `router` must be one of learned, lexicon, length, rules"
            )))?),
        };
        let rules = map.get("rules").map(|rules| Rule::list(rules, what)).transpose()?;
        let settings = RouterSettings {
            router,
            strong_share: json::number(map, "strong_share", what)?,
            threshold: json::number(map, "threshold", what)?,
            rules,
        };
        settings.check_ranges().map_err(|err| SettingsError::Invalid(format!("{what}: {err}")))?;
        Ok(settings)
    }

    /// These settings, with `base` filling what they leave out. A threshold or a share set
    /// here replaces both of the base's (they are two ways to say one thing).
    pub fn over(&self, base: &RouterSettings) -> RouterSettings {
        let own_threshold = self.threshold.is_some() || self.strong_share.is_some();
        RouterSettings {
            router: self.router.or(base.router),
            strong_share: if own_threshold { self.strong_share } else { base.strong_share },
            threshold: if own_threshold { self.threshold } else { base.threshold },
            rules: self.rules.clone().or_else(|| base.rules.clone()),
        }
    }

    fn check_ranges(&self) -> Result<(), SettingsError> {
        for (name, value) in [("strong_share", self.strong_share), ("threshold", self.threshold)] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err(SettingsError::Invalid(format!("`{name}` must be a number in [0, 1]")));
            }
        }
        Ok(())
    }

    /// Checks the settings as routed by: ranges, and that the rules router has rules (each
    /// rule was checked as parsed).
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.check_ranges()?;
        if self.router == Some(RouterKind::Rules) && self.rules.as_ref().is_none_or(Vec::is_empty) {
            return Err(SettingsError::Invalid("the `rules` router needs at least one rule".into()));
        }
        Ok(())
    }
}

/// Characters at which the length router's score is one half.
const LENGTH_SCALE: f64 = 300.0;

/// The length router's score: `chars / (chars + 300)`, in `[0, 1)`.
pub fn length_score(text: &str) -> f64 {
    let chars = text.chars().count() as f64;
    chars / (chars + LENGTH_SCALE)
}

/// The router the settings describe, ready to route.
#[derive(Debug, Clone)]
pub struct ConfiguredRouter {
    kind: RouterKind,
    rules: Vec<Rule>,
    learned: LearnedRouter<'static>,
    lexicon: ComplexityAnalyzer,
    /// The System 2 threshold of the length router.
    length_threshold: f64,
}

/// A decision and the router that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub decision: RoutingDecision,
    /// `rules`, `learned`, `lexicon` or `length`.
    pub router: &'static str,
}

impl ConfiguredRouter {
    /// The router `settings` (validated) name; `lexicon` takes the analyzer's configuration.
    pub fn new(settings: &RouterSettings, analyzer: AnalyzerConfig) -> Result<ConfiguredRouter, SettingsError> {
        settings.validate()?;
        let kind = settings.router.unwrap_or(RouterKind::Learned);
        let mut learned = LearnedRouter::default();
        let mut lexicon = analyzer;
        let mut length_threshold = 0.5;
        if let Some(threshold) = settings.threshold {
            learned = learned.with_threshold(threshold);
            lexicon.threshold = threshold;
            length_threshold = threshold;
        } else if let Some(share) = settings.strong_share {
            learned = learned.with_strong_share(share);
            lexicon.threshold = threshold_for_share(&LEXICON_SHARE_THRESHOLDS, share);
            length_threshold = threshold_for_share(&LENGTH_SHARE_THRESHOLDS, share);
        }
        let rules = settings.rules.clone().unwrap_or_default();
        Ok(ConfiguredRouter { kind, rules, learned, lexicon: ComplexityAnalyzer::new(lexicon), length_threshold })
    }

    /// Routes `input`: the first matching rule decides what it names, the router the rest.
    pub fn decide(&self, input: &RouteInput<'_>) -> Routed {
        let rule = self.rules.iter().enumerate().find_map(|(i, rule)| {
            rule.phrases.iter().find(|phrase| contains_ignoring_case(input.text, phrase)).map(|p| (i, rule, p))
        });
        let mut routed = self.by_router(input);
        if let Some((i, rule, phrase)) = rule {
            let decision = &mut routed.decision;
            decision.mode = rule.mode.unwrap_or(decision.mode);
            decision.tier = rule.tier.unwrap_or(decision.tier);
            decision.reasons.insert(0, format!("rule {} matched `{phrase}`", i.saturating_add(1)));
            if rule.mode.is_some() && rule.tier.is_some() {
                routed.router = RouterKind::Rules.as_str();
            }
        }
        routed
    }

    fn by_router(&self, input: &RouteInput<'_>) -> Routed {
        let (decision, router) = match self.kind {
            RouterKind::Lexicon => (self.lexicon.route(input), RouterKind::Lexicon),
            RouterKind::Length => (self.by_length(input), RouterKind::Length),
            RouterKind::Learned | RouterKind::Rules => (self.learned.route(input), RouterKind::Learned),
        };
        Routed { decision, router: router.as_str() }
    }

    fn by_length(&self, input: &RouteInput<'_>) -> RoutingDecision {
        let score = length_score(input.text);
        let chars = input.text.chars().count();
        let tier = if score >= self.length_threshold { Tier::System2 } else { Tier::System1 };
        let mode = self.learned.mode(input);
        let cmp = if tier == Tier::System2 { ">=" } else { "<" };
        let reasons = vec![
            format!("mode {mode}: from the learned model"),
            format!("{chars} characters: score {score:.2} {cmp} threshold {:.2}: {tier}", self.length_threshold),
        ];
        RoutingDecision { mode, tier, score, reasons }
    }
}

impl Router for ConfiguredRouter {
    fn route(&self, input: &RouteInput<'_>) -> RoutingDecision {
        self.decide(input).decision
    }
}

/// Whether `text` contains `phrase`, ASCII letters compared without case (others exactly).
fn contains_ignoring_case(text: &str, phrase: &str) -> bool {
    let (text, phrase) = (text.as_bytes(), phrase.trim().as_bytes());
    !phrase.is_empty() && text.windows(phrase.len()).any(|window| window.eq_ignore_ascii_case(phrase))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<RouterSettings, SettingsError> {
        RouterSettings::from_value(&serde_json::from_str(json).unwrap(), "ROUTER_TENANTS")
    }

    #[test]
    fn layers_fill_what_they_leave_out() {
        let platform = settings(r#"{"router": "lexicon", "strong_share": 0.3}"#).unwrap();
        let tenant = settings(r#"{"threshold": 0.7}"#).unwrap();
        let merged = tenant.over(&platform);
        assert_eq!(merged.router, Some(RouterKind::Lexicon));
        assert_eq!((merged.threshold, merged.strong_share), (Some(0.7), None));
        assert_eq!(RouterSettings::default().over(&platform), platform);
    }

    #[test]
    fn bad_settings_are_named() {
        for (json, needle) in [
            (r#"{"strong_share": 1.5}"#, "ROUTER_TENANTS: `strong_share` must be a number in [0, 1]"),
            (r#"{"strong_share": "half"}"#, "`strong_share` must be a number"),
            (r#"{"rules": [{"match": "x"}]}"#, "rule 1: name a `mode`, a `tier` or both"),
            (r#"{"rules": [{"match": "", "mode": "code"}]}"#, "rule 1: `match` needs non-empty phrases"),
            (r#"{"rules": [{"match": "x", "mode": "magic"}]}"#, "rule 1: unknown mode `magic`"),
            (r#"{"rules": [{"match": "x", "tier": "fast"}]}"#, "rule 1: `tier` must be system1 or system2"),
            (r#"{"rules": {"match": "x"}}"#, "a JSON list"),
            (r#"{"router": "magic"}"#, "`router` must be one of"),
            (r#"{"routr": "learned"}"#, "unknown field `routr`"),
            ("[]", "must be a JSON object"),
        ] {
            let err = settings(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn the_rules_router_needs_rules_from_some_layer() {
        let tenant = settings(r#"{"router": "rules"}"#).unwrap();
        let err = ConfiguredRouter::new(&tenant, AnalyzerConfig::default()).unwrap_err().to_string();
        assert!(err.contains("at least one rule"), "{err}");
        let platform = settings(r#"{"rules": [{"match": "invoice", "mode": "knowledge"}]}"#).unwrap();
        let merged = tenant.over(&platform);
        let routed = ConfiguredRouter::new(&merged, AnalyzerConfig::default()).unwrap();
        assert_eq!(routed.decide(&RouteInput::new("the invoice")).decision.mode, Mode::Knowledge);
    }

    #[test]
    fn shares_interpolate_between_steps() {
        let table = [1.0, 0.8, 0.6];
        assert_eq!(threshold_for_share(&table, 0.0), 1.0);
        assert!((threshold_for_share(&table, 0.25) - 0.9).abs() < 1e-6);
        assert!((threshold_for_share(&table, 1.0) - 0.6).abs() < 1e-6);
        assert!((threshold_for_share(&table, 7.0) - 0.6).abs() < 1e-6);
    }

    #[test]
    fn phrases_match_without_ascii_case() {
        assert!(contains_ignoring_case("Please check the INVOICE", "invoice"));
        assert!(contains_ignoring_case("幫我查發票", "發票"));
        assert!(!contains_ignoring_case("short", "  "));
    }
}
