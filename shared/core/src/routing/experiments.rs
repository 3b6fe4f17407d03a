//! A/B variants (the seed's "A/B testing"): `EXPERIMENTS` names weighted variants of the
//! router, its threshold or strong share, or the models, for a share of the traffic. A subject
//! (a user, an API key) is assigned by a hash of the experiment's name and the subject, so it
//! stays in one variant for as long as the experiment is unchanged, on every function alike.
//!
//! ```json
//! {"name": "router-ab", "traffic": 0.5, "variants": [
//!   {"name": "control", "weight": 1},
//!   {"name": "lexicon", "weight": 1, "router": "lexicon"},
//!   {"name": "cheap", "weight": 2, "model": "openai/gpt-4.1-nano", "strong_share": 0.2}]}
//! ```

use serde_json::Value;

use super::choice::{RouterKind, RouterSettings, SettingsError};

/// One variant: what it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    /// Relative weight among the variants (any positive number).
    pub weight: f64,
    pub router: Option<RouterKind>,
    pub strong_share: Option<f64>,
    pub threshold: Option<f64>,
    /// The System 1 model: `model`, or `provider/model` to pick the provider it is for.
    pub model: Option<String>,
    /// The System 2 model, in the same form.
    pub strong_model: Option<String>,
}

impl Variant {
    /// The routing settings this variant changes (none of them: an empty layer).
    pub fn router_settings(&self) -> RouterSettings {
        RouterSettings { router: self.router, strong_share: self.strong_share, threshold: self.threshold, rules: None }
    }
}

/// An experiment: variants splitting a share of the traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub name: String,
    /// The share of subjects in the experiment, in `[0, 1]` (default all).
    pub traffic: f64,
    pub variants: Vec<Variant>,
}

/// Longest experiment or variant name (it is a header value and a metrics key).
const MAX_NAME: usize = 64;

/// What each field takes, for the one error message a bad field gets.
fn expected(key: &str) -> &'static str {
    match key {
        "name" => "1 to 64 letters, digits, `-`, `_` or `.`, unique",
        "traffic" | "strong_share" | "threshold" => "a number in [0, 1]",
        "weight" => "a positive number",
        "variants" => "a list of at least one variant",
        "router" => "learned, lexicon or length",
        "model" | "strong_model" => "a model name",
        _ => "",
    }
}

fn name_of(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|name| {
            !name.is_empty()
                && name.len() <= MAX_NAME
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_owned)
}

fn share_of(value: &Value) -> Option<f64> {
    value.as_f64().filter(|v| (0.0..=1.0).contains(v))
}

/// Parsed by hand over `serde_json::Value` (every function reads the experiment; serde's
/// derived deserializers would cost each several KiB of Wasm), one field at a time, a bad
/// field being one error naming it and what it takes.
impl Experiment {
    /// Parses and checks `EXPERIMENTS`.
    pub fn from_json(json: &str) -> Result<Experiment, SettingsError> {
        let value: Value =
            serde_json::from_str(json).map_err(|err| SettingsError::Invalid(format!("not valid JSON: {err}")))?;
        let bad = |at: &str, key: &str| {
            SettingsError::Invalid(match expected(key) {
                "" => format!("{at}`{key}` is not a field here"),
                takes => format!("{at}`{key}` must be {takes}"),
            })
        };
        let mut experiment = Experiment { name: String::new(), traffic: 1.0, variants: Vec::new() };
        for (key, field) in value.as_object().ok_or_else(|| bad("", "variants"))? {
            let ok = match key.as_str() {
                "name" => name_of(field).map(|name| experiment.name = name).is_some(),
                "traffic" => share_of(field).map(|traffic| experiment.traffic = traffic).is_some(),
                "variants" => {
                    for (i, item) in field.as_array().ok_or_else(|| bad("", key))?.iter().enumerate() {
                        let at = format!("variant {}: ", i.saturating_add(1));
                        let variant = Variant::from_value(item).map_err(|key| bad(&at, key))?;
                        if experiment.variants.iter().any(|v| v.name == variant.name) {
                            return Err(bad(&at, "name"));
                        }
                        experiment.variants.push(variant);
                    }
                    true
                }
                _ => false,
            };
            if !ok {
                return Err(bad("", key));
            }
        }
        if experiment.name.is_empty() {
            return Err(bad("", "name"));
        }
        if experiment.variants.is_empty() {
            return Err(bad("", "variants"));
        }
        Ok(experiment)
    }

    /// The variant `subject` is in, if the experiment's traffic share includes it.
    pub fn assign(&self, subject: &str) -> Option<&Variant> {
        let point = unit(&self.name, subject);
        if point >= self.traffic {
            return None;
        }
        // The same point, spread over the variants by weight: sticky, and the shares match
        // the weights over many subjects.
        let total: f64 = self.variants.iter().map(|v| v.weight).sum();
        let mut at = point / self.traffic.max(f64::MIN_POSITIVE) * total;
        for variant in &self.variants {
            if at < variant.weight {
                return Some(variant);
            }
            at -= variant.weight;
        }
        self.variants.last()
    }
}

impl Variant {
    /// A variant, or the key of its first bad field.
    fn from_value(value: &Value) -> Result<Variant, &str> {
        let mut variant = Variant {
            name: String::new(),
            weight: 0.0,
            router: None,
            strong_share: None,
            threshold: None,
            model: None,
            strong_model: None,
        };
        for (key, field) in value.as_object().ok_or("name")? {
            let model = || field.as_str().filter(|m| !m.trim().is_empty()).map(str::to_owned);
            let ok = match key.as_str() {
                "name" => name_of(field).map(|name| variant.name = name).is_some(),
                "weight" => field.as_f64().filter(|w| w.is_finite() && *w > 0.0).map(|w| variant.weight = w).is_some(),
                // A variant has no rules of its own: the `rules` router is not one of its choices.
                "router" => field
                    .as_str()
                    .and_then(RouterKind::parse)
                    .filter(|kind| *kind != RouterKind::Rules)
                    .map(|kind| variant.router = Some(kind))
                    .is_some(),
                "strong_share" => share_of(field).map(|share| variant.strong_share = Some(share)).is_some(),
                "threshold" => share_of(field).map(|threshold| variant.threshold = Some(threshold)).is_some(),
                "model" => model().map(|m| variant.model = Some(m)).is_some(),
                "strong_model" => model().map(|m| variant.strong_model = Some(m)).is_some(),
                _ => false,
            };
            if !ok {
                return Err(key);
            }
        }
        match (variant.name.is_empty(), variant.weight > 0.0) {
            (true, _) => Err("name"),
            (_, false) => Err("weight"),
            _ => Ok(variant),
        }
    }
}

/// A point in `[0, 1)` from the SHA-256 of the experiment's name and the subject.
fn unit(experiment: &str, subject: &str) -> f64 {
    let digest = hmac_sha256::Hash::hash(format!("{experiment}\0{subject}").as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    // 53 bits: every value exact in an f64, below 1.
    (u64::from_be_bytes(first) >> 11) as f64 / (1_u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const AB: &str = r#"{"name": "router-ab", "traffic": 0.5, "variants": [
        {"name": "control", "weight": 1},
        {"name": "lexicon", "weight": 3, "router": "lexicon"}]}"#;

    #[test]
    fn assignment_is_sticky_and_follows_the_weights() {
        let experiment = Experiment::from_json(AB).unwrap_or_else(|e| panic!("{e}"));
        let mut counts = std::collections::BTreeMap::<&str, u32>::new();
        for i in 0..20_000 {
            let subject = format!("user-{i}");
            let variant = experiment.assign(&subject);
            assert_eq!(variant, experiment.assign(&subject), "sticky");
            *counts.entry(variant.map_or("none", |v| v.name.as_str())).or_default() += 1;
        }
        let share = |name| f64::from(counts.get(name).copied().unwrap_or(0)) / 20_000.0;
        assert!((share("none") - 0.5).abs() < 0.02, "{counts:?}");
        assert!((share("control") - 0.125).abs() < 0.015, "{counts:?}");
        assert!((share("lexicon") - 0.375).abs() < 0.02, "{counts:?}");
    }

    #[test]
    fn another_experiment_shuffles_the_subjects() {
        let a = Experiment::from_json(AB).unwrap_or_else(|e| panic!("{e}"));
        let b = Experiment::from_json(&AB.replace("router-ab", "router-ab-2")).unwrap_or_else(|e| panic!("{e}"));
        let same = (0..1000).filter(|i| a.assign(&format!("u{i}")) == b.assign(&format!("u{i}"))).count();
        assert!(same < 700, "{same}");
    }

    #[test]
    fn bad_experiments_are_named() {
        for (json, needle) in [
            (r#"{"name": "x", "variants": []}"#, "`variants` must be a list of at least one variant"),
            (r#"{"name": "a b", "variants": [{"name": "v", "weight": 1}]}"#, "`name` must be 1 to 64 letters"),
            (r#"{"variants": [{"name": "v", "weight": 1}]}"#, "`name` must be"),
            (
                r#"{"name": "x", "variants": [{"name": "v", "weight": 1, "router": "rules"}]}"#,
                "variant 1: `router` must be learned, lexicon or length",
            ),
            ("{", "not valid JSON"),
            ("[]", "`variants` must be"),
            (
                r#"{"name": "x", "traffic": 2, "variants": [{"name": "v", "weight": 1}]}"#,
                "`traffic` must be a number in [0, 1]",
            ),
            (
                r#"{"name": "x", "variants": [{"name": "v", "weight": 0}]}"#,
                "variant 1: `weight` must be a positive number",
            ),
            (r#"{"name": "x", "variants": [{"name": "v"}]}"#, "variant 1: `weight`"),
            (
                r#"{"name": "x", "variants": [{"name": "v", "weight": 1}, {"name": "v", "weight": 1}]}"#,
                "variant 2: `name` must be 1 to 64 letters, digits, `-`, `_` or `.`, unique",
            ),
            (
                r#"{"name": "x", "variants": [{"name": "v", "weight": 1, "strong_share": 3}]}"#,
                "variant 1: `strong_share` must be a number in [0, 1]",
            ),
            (
                r#"{"name": "x", "variants": [{"name": "v", "weight": 1, "colour": "red"}]}"#,
                "variant 1: `colour` is not a field here",
            ),
        ] {
            let err = Experiment::from_json(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
