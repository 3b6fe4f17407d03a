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

use serde::Deserialize;

use super::choice::{RouterKind, RouterSettings, SettingsError};

/// One variant: what it changes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    /// Relative weight among the variants (any positive number).
    pub weight: f64,
    #[serde(default)]
    pub router: Option<RouterKind>,
    #[serde(default)]
    pub strong_share: Option<f64>,
    #[serde(default)]
    pub threshold: Option<f64>,
    /// The System 1 model: `model`, or `provider/model` to pick the provider it is for.
    #[serde(default)]
    pub model: Option<String>,
    /// The System 2 model, in the same form.
    #[serde(default)]
    pub strong_model: Option<String>,
}

impl Variant {
    /// The routing settings this variant changes (none of them: an empty layer).
    pub fn router_settings(&self) -> RouterSettings {
        RouterSettings { router: self.router, strong_share: self.strong_share, threshold: self.threshold, rules: None }
    }
}

/// An experiment: variants splitting a share of the traffic.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    /// The share of subjects in the experiment, in `[0, 1]` (default all).
    #[serde(default = "everyone")]
    pub traffic: f64,
    pub variants: Vec<Variant>,
}

fn everyone() -> f64 {
    1.0
}

/// Longest experiment or variant name (it is a header value and a metrics key).
const MAX_NAME: usize = 64;

impl Experiment {
    /// Parses and checks `EXPERIMENTS`.
    pub fn from_json(json: &str) -> Result<Experiment, SettingsError> {
        let experiment: Experiment = serde_json::from_str(json)
            .map_err(|err| SettingsError::Invalid(format!("not a valid experiment: {err}")))?;
        experiment.validate()?;
        Ok(experiment)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |message: String| Err(SettingsError::Invalid(message));
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.len() <= MAX_NAME
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !name_ok(&self.name) {
            return invalid(format!("`name`: 1 to {MAX_NAME} letters, digits, `-`, `_` or `.`"));
        }
        if !(0.0..=1.0).contains(&self.traffic) {
            return invalid("`traffic` must be a number in [0, 1]".into());
        }
        if self.variants.is_empty() {
            return invalid("`variants` must name at least one variant".into());
        }
        for (i, variant) in self.variants.iter().enumerate() {
            let n = i.saturating_add(1);
            if !name_ok(&variant.name) {
                return invalid(format!("variant {n}: `name`: 1 to {MAX_NAME} letters, digits, `-`, `_` or `.`"));
            }
            if self.variants.iter().take(i).any(|v| v.name == variant.name) {
                return invalid(format!("variant {n}: the name `{}` is used twice", variant.name));
            }
            if !(variant.weight.is_finite() && variant.weight > 0.0) {
                return invalid(format!("variant {n}: `weight` must be a positive number"));
            }
            variant
                .router_settings()
                .validate()
                .map_err(|err| SettingsError::Invalid(format!("variant {n}: {err}")))?;
            if variant.router == Some(RouterKind::Rules) {
                return invalid(format!("variant {n}: the `rules` router takes its rules from ROUTER_RULES"));
            }
        }
        Ok(())
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

/// A point in `[0, 1)` from the SHA-256 of the experiment's name and the subject.
fn unit(experiment: &str, subject: &str) -> f64 {
    let mut hash = hmac_sha256::Hash::new();
    hash.update(experiment.as_bytes());
    hash.update([0]);
    hash.update(subject.as_bytes());
    let digest = hash.finalize();
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
            (r#"{"name": "x", "variants": []}"#, "at least one"),
            (r#"{"name": "a b", "variants": [{"name": "v", "weight": 1}]}"#, "`name`"),
            (r#"{"name": "x", "traffic": 2, "variants": [{"name": "v", "weight": 1}]}"#, "traffic"),
            (r#"{"name": "x", "variants": [{"name": "v", "weight": 0}]}"#, "weight"),
            (r#"{"name": "x", "variants": [{"name": "v", "weight": 1}, {"name": "v", "weight": 1}]}"#, "twice"),
            (r#"{"name": "x", "variants": [{"name": "v", "weight": 1, "strong_share": 3}]}"#, "strong_share"),
            (r#"{"name": "x", "variants": [{"name": "v", "weight": 1, "colour": "red"}]}"#, "colour"),
        ] {
            let err = Experiment::from_json(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
