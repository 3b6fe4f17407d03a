//! Trains the learned router (`opencode_core::routing::learned`) from the data in
//! `tests/routing` and writes its weights as Rust (`shared/core/src/routing/learned_weights.rs`);
//! reports every router's figures on held-out data (`main.rs`).
//!
//! Training is deterministic (a fixed order, no threads), so regenerating the weights from the
//! same data gives the same file: `tests/regenerate.rs` checks the shipped one.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

pub mod data;
pub mod eval;
pub mod render;
pub mod train;

use std::path::{Path, PathBuf};

use opencode_core::routing::choice::length_score;
use opencode_core::routing::learned::{LearnedRouter, Tables};
use opencode_core::routing::{ComplexityAnalyzer, Mode, RouteInput, Router, Tier};

use data::{Graded, Labelled};
use train::{Params, Sample, TierExample, Trained};

/// The file the weights are generated into, relative to the repository root.
pub const WEIGHTS_FILE: &str = "shared/core/src/routing/learned_weights.rs";
/// The RouteLLM data sets the tier model learns from.
pub const GRADED: [&str; 2] = ["gsm8k", "mmlu"];

/// Everything the router learns from, with its features extracted once.
pub struct Corpus {
    pub labelled: Vec<Labelled>,
    pub labelled_samples: Vec<Sample>,
    /// Per data set of [`GRADED`]: its rows and their features.
    pub graded: Vec<(Vec<Graded>, Vec<Sample>)>,
    pub params: Params,
}

impl Corpus {
    pub fn load(root: &Path, params: Params) -> Result<Corpus, String> {
        let labelled = data::labelled(&root.join("tests/routing/prompts.jsonl"))?;
        let labelled_samples = labelled.iter().map(|row| Sample::new(&row.prompt, &params)).collect();
        let mut graded = Vec::new();
        for name in GRADED {
            let rows = data::graded(&root.join(format!("tests/routing/routellm/{name}.csv")))?;
            let samples = rows.iter().map(|row| Sample::new(&row.prompt, &params)).collect();
            graded.push((rows, samples));
        }
        Ok(Corpus { labelled, labelled_samples, graded, params })
    }

    /// Trains on the rows `keep` accepts (by fold).
    pub fn train(&self, keep: impl Fn(u64) -> bool) -> Trained {
        let modes: Vec<(&Sample, Mode)> = self
            .labelled
            .iter()
            .zip(&self.labelled_samples)
            .filter(|(row, _)| keep(data::fold(&row.prompt)))
            .map(|(row, sample)| (sample, row.mode))
            .collect();
        let mode = train::mode(&modes, &self.params);
        let example = |sample, target, weight| TierExample { sample, target, weight };
        let mut examples = Vec::new();
        for (rows, samples) in &self.graded {
            for (row, sample) in rows.iter().zip(samples).filter(|(row, _)| keep(data::fold(&row.prompt))) {
                // E[target] = (1 + P(strong right) - P(weak right)) / 2: what a strong call gains.
                let target = (1.0 + f32::from(u8::from(row.strong)) - f32::from(u8::from(row.weak))) / 2.0;
                examples.push(example(sample, target, 1.0));
            }
        }
        for (row, sample) in
            self.labelled.iter().zip(&self.labelled_samples).filter(|(r, _)| keep(data::fold(&r.prompt)))
        {
            let target = f32::from(u8::from(row.tier == Tier::System2));
            examples.push(example(sample, target, self.params.labelled_weight));
        }
        let tier = train::tier(&examples, &self.params);
        Trained::new(&tier, &mode)
    }

    /// Each row scored by the model trained without its fold.
    pub fn cross_validate(&self) -> HeldOut {
        self.cross_validate_without(None)
    }

    /// Like [`Corpus::cross_validate`], with the rows of fold `kept_out` neither trained on nor
    /// scored (their results stay at zero): how the settings are chosen without fold 0.
    pub fn cross_validate_without(&self, kept_out: Option<u64>) -> HeldOut {
        let mut graded: Vec<Vec<f64>> = self.graded.iter().map(|(rows, _)| vec![0.0; rows.len()]).collect();
        let mut labelled = vec![(Mode::Chat, Tier::System1, 0.0); self.labelled.len()];
        for fold in (0..data::FOLDS).filter(|f| Some(*f) != kept_out) {
            let trained = self.train(|f| f != fold && Some(f) != kept_out);
            let tables = Tables::unpack(&trained.weights());
            let router = LearnedRouter::new(trained.weights(), &tables);
            for ((rows, _), scores) in self.graded.iter().zip(&mut graded) {
                for (row, score) in rows.iter().zip(scores.iter_mut()).filter(|(r, _)| data::fold(&r.prompt) == fold) {
                    *score = router.score(&RouteInput::new(&row.prompt));
                }
            }
            for (row, slot) in self.labelled.iter().zip(&mut labelled).filter(|(r, _)| data::fold(&r.prompt) == fold) {
                let decision = router.route(&RouteInput::new(&row.prompt));
                *slot = (decision.mode, decision.tier, decision.score);
            }
        }
        HeldOut { graded, labelled }
    }

    /// The shipped model: trained on every row, with the strong-share tables of the labelled
    /// prompts: this model's from held-out scores (its scores on prompts it was trained on are
    /// surer than on new ones), the lexicon's (default configuration) and the length router's.
    pub fn train_all(&self) -> Trained {
        let mut trained = self.train(|_| true);
        let table = |score: &dyn Fn(&str) -> f64| {
            train::share_thresholds(&self.labelled.iter().map(|row| score(&row.prompt)).collect::<Vec<_>>())
        };
        let held_out: Vec<f64> = self.cross_validate().labelled.iter().map(|(_, _, score)| *score).collect();
        trained.share_thresholds = train::share_thresholds(&held_out);
        let lexicon = ComplexityAnalyzer::default();
        trained.lexicon_shares = table(&|prompt| lexicon.score(&RouteInput::new(prompt)));
        trained.length_shares = table(&length_score);
        trained
    }
}

/// Held-out results: each row's from the model trained without its fold.
pub struct HeldOut {
    /// Per data set of [`GRADED`], each row's tier score.
    pub graded: Vec<Vec<f64>>,
    /// Per labelled prompt: the mode, tier and score decided.
    pub labelled: Vec<(Mode, Tier, f64)>,
}

/// The repository root: the first argument, else the current directory.
pub fn root_from_args() -> PathBuf {
    PathBuf::from(std::env::args().nth(2).unwrap_or_else(|| ".".to_owned()))
}

/// The weights file the data in `root` gives.
pub fn generate(root: &Path) -> Result<String, String> {
    Ok(render::rust(&Corpus::load(root, train::PARAMS)?.train_all()))
}
