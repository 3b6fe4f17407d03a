//! What a call cost, in US dollars: token counts times the model's list price.
//!
//! The built-in table holds the vendors' published standard prices (USD per million tokens,
//! no batch or cache discounts) for the models the platform defaults to and their common
//! siblings; `MODEL_PRICES` adds or replaces entries, e.g.
//! `{"gpt-4.1": {"input": 2, "output": 8}, "llama3.2": {"input": 0, "output": 0}}`. A model
//! is matched by its exact name, else by the longest entry it extends with `-` (a dated
//! snapshot such as `gpt-4.1-mini-2025-04-14` takes `gpt-4.1-mini`'s price). A model with no
//! price has no cost: answers then leave `cost_usd` out rather than guess.
//!
//! Reasoning tokens are billed as output by every vendor and are already part of
//! `output_tokens`. Long-context surcharges (Gemini 2.5 Pro above 200k prompt tokens) and
//! prompt-cache discounts are not modelled.

use crate::model::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    pub fn cost(self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input + usage.output_tokens as f64 * self.output) / 1_000_000.0
    }
}

const fn price(input: f64, output: f64) -> Price {
    Price { input, output }
}

/// Standard list prices, USD per million tokens (the vendors' pricing pages, late 2025).
const BUILT_IN: &[(&str, Price)] = &[
    ("gpt-5", price(1.25, 10.0)),
    ("gpt-5-mini", price(0.25, 2.0)),
    ("gpt-5-nano", price(0.05, 0.4)),
    ("gpt-4.1", price(2.0, 8.0)),
    ("gpt-4.1-mini", price(0.4, 1.6)),
    ("gpt-4.1-nano", price(0.1, 0.4)),
    ("gpt-4o", price(2.5, 10.0)),
    ("gpt-4o-mini", price(0.15, 0.6)),
    ("o3", price(2.0, 8.0)),
    ("o4-mini", price(1.1, 4.4)),
    ("claude-opus-4-5", price(5.0, 25.0)),
    ("claude-opus-4-1", price(15.0, 75.0)),
    ("claude-sonnet-4-5", price(3.0, 15.0)),
    ("claude-sonnet-4", price(3.0, 15.0)),
    ("claude-haiku-4-5", price(1.0, 5.0)),
    ("claude-3-5-haiku", price(0.8, 4.0)),
    ("gemini-2.5-pro", price(1.25, 10.0)),
    ("gemini-2.5-flash", price(0.3, 2.5)),
    ("gemini-2.5-flash-lite", price(0.1, 0.4)),
    ("gemini-2.0-flash", price(0.1, 0.4)),
];

/// The price list one request runs with: `MODEL_PRICES` over the built-in table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    configured: Vec<(String, Price)>,
}

impl Prices {
    /// Reads `MODEL_PRICES` from `var`; a malformed value is an error naming the variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Prices, String> {
        let Some(json) = var("MODEL_PRICES") else {
            return Ok(Prices::default());
        };
        let bad = |why: String| format!("MODEL_PRICES: {why}");
        // Read as a value, checked by hand: a derived map of structs costs Wasm size in every
        // function.
        let table: serde_json::Value = serde_json::from_str(&json).map_err(|err| bad(format!("not JSON ({err})")))?;
        let entries = table.as_object().ok_or_else(|| {
            bad("must be an object of {\"model\": {\"input\": usd, \"output\": usd}} per million tokens".into())
        })?;
        let mut configured = Vec::with_capacity(entries.len());
        for (model, price) in entries {
            let usd = |key: &str| {
                price.get(key).and_then(serde_json::Value::as_f64).filter(|usd| usd.is_finite() && *usd >= 0.0)
            };
            let (Some(input), Some(output), Some(2)) =
                (usd("input"), usd("output"), price.as_object().map(|p| p.len()))
            else {
                return Err(bad(format!(
                    "the price of `{model}` must be {{\"input\": usd, \"output\": usd}}, two non-negative numbers"
                )));
            };
            // Lower-cased once here: lookups compare without allocating.
            configured.push((model.to_ascii_lowercase(), Price { input, output }));
        }
        Ok(Prices { configured })
    }

    /// The price of `model` (any case): its own name, else the longest name it extends with
    /// `-`; a configured entry over a built-in one.
    pub fn lookup(&self, model: &str) -> Option<Price> {
        let model = model.rsplit('/').next().unwrap_or(model).trim().to_ascii_lowercase();
        let extends =
            |name: &str| model.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with('-'));
        // One pass on the request path: the longest name the model extends wins (its own name
        // is the longest there is); configured entries come first and keep a tie.
        let entries =
            self.configured.iter().map(|(name, price)| (name.as_str(), *price)).chain(BUILT_IN.iter().copied());
        let mut best: Option<(&str, Price)> = None;
        for (name, price) in entries.filter(|(name, _)| extends(name)) {
            if best.is_none_or(|(longest, _)| name.len() > longest.len()) {
                best = Some((name, price));
            }
        }
        best.map(|(_, price)| price)
    }

    /// What `usage` on `model` cost, when the model has a price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.lookup(model).map(|price| price.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::float_cmp)]
    use super::*;

    fn usage(input: u64, output: u64) -> Usage {
        Usage { input_tokens: input, output_tokens: output, reasoning_tokens: 0, cached_tokens: 0 }
    }

    #[test]
    fn exact_names_then_the_longest_dashed_prefix() {
        let prices = Prices::default();
        assert_eq!(prices.lookup("gpt-4.1"), Some(price(2.0, 8.0)));
        assert_eq!(prices.lookup("gpt-4.1-mini"), Some(price(0.4, 1.6)));
        assert_eq!(prices.lookup("gpt-4.1-mini-2025-04-14"), Some(price(0.4, 1.6)));
        assert_eq!(prices.lookup("models/gemini-2.5-flash-lite"), Some(price(0.1, 0.4)));
        assert_eq!(prices.lookup("claude-sonnet-4-5-20250929"), Some(price(3.0, 15.0)));
        // No dash, no match: `o3x` is not `o3`, and `gpt-4.10` is not `gpt-4.1`.
        assert_eq!(prices.lookup("o3x"), None);
        assert_eq!(prices.lookup("gpt-4.10"), None);
        assert_eq!(prices.lookup("llama3.2"), None);
    }

    #[test]
    fn cost_is_tokens_times_price_per_million() {
        let prices = Prices::default();
        let cost = prices.cost("gpt-4.1", &usage(1_000, 500)).unwrap();
        assert!((cost - 0.006).abs() < 1e-12, "{cost}");
        assert_eq!(prices.cost("unknown-model", &usage(1, 1)), None);
    }

    #[test]
    fn configured_prices_add_and_replace_and_bad_ones_name_the_variable() {
        let vars = |json: &'static str| move |name: &str| (name == "MODEL_PRICES").then(|| json.to_owned());
        let prices =
            Prices::from_vars(vars(r#"{"llama3.2": {"input": 0, "output": 0}, "gpt-4.1": {"input": 1, "output": 2}}"#))
                .unwrap();
        assert_eq!(prices.lookup("llama3.2"), Some(price(0.0, 0.0)));
        assert_eq!(prices.lookup("gpt-4.1-2025-04-14"), Some(price(1.0, 2.0)));
        for bad in [r#"{"m": {"input": -1, "output": 0}}"#, r#"{"m": 3}"#, "not json", r#"{"m": {"input": 1}}"#] {
            let err = Prices::from_vars(vars(bad)).unwrap_err();
            assert!(err.contains("MODEL_PRICES"), "{bad}: {err}");
        }
    }
}
