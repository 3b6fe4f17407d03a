//! The learned router: two linear models over [`features`](super::features), trained by
//! `tools/router-train` and generated into `learned_weights.rs`.
//!
//! The tier model is a logistic regression whose score estimates how much a strong model
//! would gain over a weak one on the prompt (trained on the RouteLLM correctness labels and
//! the labelled prompts' tiers); the mode model a softmax over the six modes (trained on the
//! labelled prompts). Hashed weights are stored as 4-bit integers, with one scale for the mode
//! model and one per kind of text for the tier model (what they lose is within the held-out
//! figures' noise; they cost the gateway a quarter of `f32`'s size and half of `i8`'s).

use std::sync::OnceLock;

use super::features::{extract, Features, DENSE, DENSE_NAMES, KINDS};
use super::{Mode, RouteInput, Router, RoutingDecision, Tier};

/// The threshold that sent `share` of the labelled prompts to System 2, from a table of
/// thresholds in 5% steps (interpolated).
pub fn threshold_for_share(table: &[f32], share: f64) -> f64 {
    let last = table.len().saturating_sub(1);
    let position = share.clamp(0.0, 1.0) * last.max(1) as f64;
    let below = (position.floor() as usize).min(last);
    let at = |i: usize| table.get(i.min(last)).map_or(0.5, |t| f64::from(*t));
    let fraction = position - below as f64;
    (at(below) + (at(below.saturating_add(1)) - at(below)) * fraction).clamp(0.0, 1.0)
}

/// The `index`th 4-bit weight of `packed` (low nibble first), in `-8..=7`; 0 past the end.
pub fn nibble(packed: &[u8], index: usize) -> i32 {
    let byte = packed.get(index / 2).copied().unwrap_or(0);
    let bits = if index.is_multiple_of(2) { byte & 0x0f } else { byte >> 4 };
    // Sign-extends the four bits.
    i32::from((bits << 4) as i8 >> 4)
}

/// A trained model's numbers. `'static` for the generated weights; the trainer borrows its own.
#[derive(Debug, Clone, Copy)]
pub struct Weights<'w> {
    /// Per [`Kind`](super::features::Kind) of text.
    pub tier_dense: &'w [[f32; DENSE]; KINDS],
    /// Per kind of text, one weight per bucket (a power of two of them), times the kind's
    /// `tier_scales`: 4-bit signed, two to a byte ([`nibble`]).
    pub tier_buckets: &'w [u8],
    pub tier_scales: [f32; KINDS],
    /// Per mode, in [`Mode::ALL`] order.
    pub mode_dense: &'w [[f32; DENSE]; 6],
    /// Six weights (the modes) per bucket, times `mode_scale`, packed the same way.
    pub mode_buckets: &'w [u8],
    pub mode_scale: f32,
    /// The score thresholds at which 0%, 5%, ... 100% of the labelled prompts go to System 2
    /// (ascending share, descending threshold): what `ROUTER_STRONG_SHARE` reads.
    pub share_thresholds: &'w [f32],
}

/// The hashed weights unpacked to a byte each, bucket by bucket, so what a token adds (its three
/// tier weights, one per kind of text, and its six mode weights) is read from adjacent bytes.
/// Unpacked once per instance: decoding nine nibbles per token was half the time of a 2 KB
/// Chinese prompt (1,360 tokens).
#[derive(Debug, Clone)]
pub struct Tables {
    tier: Vec<[i8; KINDS]>,
    mode: Vec<[i8; 6]>,
}

impl Tables {
    pub fn unpack(weights: &Weights<'_>) -> Tables {
        let unpacked = |packed: &[u8], index: usize| i8::try_from(nibble(packed, index)).unwrap_or(0);
        let tier_size = weights.tier_buckets.len().saturating_mul(2) / KINDS;
        let tier = (0..tier_size)
            .map(|bucket| {
                std::array::from_fn(|kind| {
                    unpacked(weights.tier_buckets, kind.saturating_mul(tier_size).saturating_add(bucket))
                })
            })
            .collect();
        let mode = (0..weights.mode_buckets.len() / 3)
            .map(|bucket| {
                std::array::from_fn(|mode| {
                    unpacked(weights.mode_buckets, bucket.saturating_mul(6).saturating_add(mode))
                })
            })
            .collect();
        Tables { tier, mode }
    }

    /// The generated weights' tables.
    pub fn shipped() -> &'static Tables {
        static SHIPPED: OnceLock<Tables> = OnceLock::new();
        SHIPPED.get_or_init(|| Tables::unpack(&super::learned_weights::WEIGHTS))
    }
}

/// The tier score's default System 2 threshold: of 0.4 to 0.9, the one with the best tier
/// accuracy on the held-out scores of cross-validation folds 1 to 4 (on the first 663
/// labelled prompts: 82.1% at 0.5, 83.1% at 0.6); fold 0, never used for a choice, measures it.
pub const DEFAULT_THRESHOLD: f64 = 0.6;

/// The learned [`Router`]: System 2 when the tier score reaches `threshold`.
#[derive(Debug, Clone, Copy)]
pub struct LearnedRouter<'w> {
    weights: Weights<'w>,
    /// `weights`' hashed tables, unpacked.
    tables: &'w Tables,
    threshold: f64,
    /// The strong-call share the threshold was set for, if it was.
    share: Option<f64>,
}

impl Default for LearnedRouter<'static> {
    fn default() -> Self {
        LearnedRouter::new(super::learned_weights::WEIGHTS, Tables::shipped())
    }
}

/// What the two models say about one input.
struct Scores {
    features: Features,
    tier_logit: f32,
    mode_logits: [f32; 6],
    /// The chosen mode, an index of [`Mode::ALL`].
    mode: usize,
}

/// The index of the largest logit (the first of equals).
fn argmax(logits: &[f32; 6]) -> usize {
    let mut best = 0;
    for (i, logit) in logits.iter().enumerate() {
        if *logit > logits.get(best).copied().unwrap_or(f32::NEG_INFINITY) {
            best = i;
        }
    }
    best
}

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

fn dot(a: &[f32; DENSE], b: &[f32; DENSE]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl<'w> LearnedRouter<'w> {
    /// A router over these weights (`tables`: theirs, [`Tables::unpack`]ed), at the default
    /// threshold.
    pub fn new(weights: Weights<'w>, tables: &'w Tables) -> Self {
        LearnedRouter { weights, tables, threshold: DEFAULT_THRESHOLD, share: None }
    }

    /// The same router, sending System 2 what reaches `threshold` (clamped to `[0, 1]`).
    pub fn with_threshold(self, threshold: f64) -> Self {
        LearnedRouter { threshold: threshold.clamp(0.0, 1.0), share: None, ..self }
    }

    /// The same router, with the threshold that sent `share` (in `[0, 1]`) of the labelled
    /// prompts to System 2 (interpolated between the trained table's 5% steps).
    pub fn with_strong_share(self, share: f64) -> Self {
        let threshold = threshold_for_share(self.weights.share_thresholds, share);
        LearnedRouter { threshold, share: Some(share.clamp(0.0, 1.0)), ..self }
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The mode alone, without building reasons (the length router's mode).
    pub fn mode(&self, input: &RouteInput<'_>) -> Mode {
        self.decide(input, false).mode
    }

    fn tier_dense(&self, features: &Features) -> &'w [f32; DENSE] {
        let w: &'w [[f32; DENSE]; KINDS] = self.weights.tier_dense;
        w.get(features.kind as usize).unwrap_or(&w[0])
    }

    fn scores(&self, input: &RouteInput<'_>) -> Scores {
        let w = &self.weights;
        let (tier_table, mode_table) = (&self.tables.tier, &self.tables.mode);
        let tier_mask = tier_table.len().saturating_sub(1);
        let mode_mask = mode_table.len().saturating_sub(1);
        // The kind of text is known at the end of the pass: each kind's sum is kept.
        let mut tier_sums = [0_i32; KINDS];
        let mut mode_sums = [0_i32; 6];
        let features = extract(input, |hash| {
            if let Some(row) = tier_table.get(hash as usize & tier_mask) {
                for (sum, weight) in tier_sums.iter_mut().zip(row) {
                    *sum = sum.wrapping_add(i32::from(*weight));
                }
            }
            if let Some(row) = mode_table.get((hash >> 32) as usize & mode_mask) {
                for (sum, weight) in mode_sums.iter_mut().zip(row) {
                    *sum = sum.wrapping_add(i32::from(*weight));
                }
            }
        });
        let tier_sum = tier_sums.get(features.kind as usize).copied().unwrap_or(0);
        let scale = features.scale();
        let mut mode_logits = [0.0; 6];
        for ((logit, dense), sum) in mode_logits.iter_mut().zip(w.mode_dense).zip(mode_sums) {
            *logit = dot(&features.dense, dense) + sum as f32 * w.mode_scale * scale;
        }
        let mode = argmax(&mode_logits);
        let tier_scale = w.tier_scales.get(features.kind as usize).copied().unwrap_or(0.0);
        let tier_logit = dot(&features.dense, self.tier_dense(&features)) + tier_sum as f32 * tier_scale * scale;
        Scores { features, tier_logit, mode_logits, mode }
    }

    fn decide(&self, input: &RouteInput<'_>, explain: bool) -> RoutingDecision {
        let scores = self.scores(input);
        let mode = Mode::ALL.get(scores.mode).copied().unwrap_or(Mode::Chat);
        let score = sigmoid(scores.tier_logit);
        let tier = if score >= self.threshold { Tier::System2 } else { Tier::System1 };
        let reasons = if explain { self.reasons(&scores, mode, score, tier) } else { Vec::new() };
        RoutingDecision { mode, tier, score, reasons }
    }

    /// The mode's probability, the signals that moved the tier score most, and the threshold.
    fn reasons(&self, scores: &Scores, mode: Mode, score: f64, tier: Tier) -> Vec<String> {
        // The softmax of the chosen (largest) logit: 1 / sum(exp(logit - chosen)).
        let chosen = scores.mode_logits.get(scores.mode).copied().unwrap_or(0.0);
        let total: f64 = scores.mode_logits.iter().map(|l| f64::from(l - chosen).exp()).sum();
        let mut reasons = vec![format!("mode {mode}: probability {:.2}", 1.0 / total.max(1.0))];
        // The three signals that moved the tier score most (a selection, not a sort: sorting
        // would link a sort for nineteen numbers).
        let dense = self.tier_dense(&scores.features);
        let mut contributions: [(f32, &str); DENSE] = [(0.0, ""); DENSE];
        for (slot, ((x, w), name)) in
            contributions.iter_mut().zip(scores.features.dense.iter().zip(dense).zip(DENSE_NAMES)).skip(1)
        {
            *slot = (x * w, name);
        }
        for _ in 0..3 {
            let Some(top) = contributions.iter_mut().max_by(|a, b| a.0.abs().total_cmp(&b.0.abs())) else { break };
            let (contribution, name) = std::mem::replace(top, (0.0, ""));
            if contribution.abs() < 0.05 {
                break;
            }
            let direction = if contribution > 0.0 { "system2" } else { "system1" };
            reasons.push(format!("{name}: towards {direction} ({contribution:+.2})"));
        }
        let cmp = if tier == Tier::System2 { ">=" } else { "<" };
        let basis = match self.share {
            Some(share) => format!(" (set for {:.0}% strong calls)", share * 100.0),
            None => String::new(),
        };
        reasons.push(format!("score {score:.2} {cmp} threshold {:.2}{basis}: {tier}", self.threshold));
        reasons
    }
}

impl Router for LearnedRouter<'_> {
    fn route(&self, input: &RouteInput<'_>) -> RoutingDecision {
        self.decide(input, true)
    }

    fn score(&self, input: &RouteInput<'_>) -> f64 {
        sigmoid(self.scores(input).tier_logit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unpacked_tables_are_the_packed_weights() {
        let weights = super::super::learned_weights::WEIGHTS;
        let tables = Tables::shipped();
        let tier_size = tables.tier.len();
        assert_eq!(tier_size * KINDS, weights.tier_buckets.len() * 2);
        assert!(tier_size.is_power_of_two() && tables.mode.len().is_power_of_two());
        for (bucket, row) in tables.tier.iter().enumerate() {
            for (kind, weight) in row.iter().enumerate() {
                assert_eq!(i32::from(*weight), nibble(weights.tier_buckets, kind * tier_size + bucket));
            }
        }
        assert_eq!(tables.mode.len() * 3, weights.mode_buckets.len());
        for (bucket, row) in tables.mode.iter().enumerate() {
            for (mode, weight) in row.iter().enumerate() {
                assert_eq!(i32::from(*weight), nibble(weights.mode_buckets, bucket * 6 + mode));
            }
        }
    }
}
