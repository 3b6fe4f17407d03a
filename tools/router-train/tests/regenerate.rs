//! The weights in the core are what the training script makes of the data in the repository.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn the_shipped_weights_are_what_the_data_gives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let generated = router_train::generate(&root).unwrap();
    let shipped = std::fs::read_to_string(root.join(router_train::WEIGHTS_FILE)).unwrap();
    // Not assert_eq!: a 100 KB diff helps nobody; the command that fixes it does.
    assert!(
        generated == shipped,
        "{} is not what the data in tests/routing gives: run `cargo run --release -p router-train -- write`",
        router_train::WEIGHTS_FILE
    );
}

#[test]
fn training_is_deterministic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = router_train::Corpus::load(&root, router_train::train::PARAMS).unwrap();
    let first = corpus.train(|fold| fold != 0);
    let second = corpus.train(|fold| fold != 0);
    assert_eq!(first, second);
    assert_ne!(first, corpus.train(|fold| fold != 1), "the folds train different models");
}

/// `ROUTER_STRONG_SHARE` spends its target share on prompts the model has not seen: the
/// shipped table, read through the router, against every labelled prompt's held-out score.
#[test]
fn the_strong_share_table_hits_its_target_on_held_out_scores() {
    use opencode_core::routing::learned::LearnedRouter;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = router_train::Corpus::load(&root, router_train::train::PARAMS).unwrap();
    let scores: Vec<f64> = corpus.cross_validate().labelled.iter().map(|(_, _, score)| *score).collect();
    for target in [0.1, 0.25, 0.5, 0.75, 0.9] {
        let threshold = LearnedRouter::default().with_strong_share(target).threshold();
        let observed = scores.iter().filter(|s| **s >= threshold).count() as f64 / scores.len() as f64;
        assert!((observed - target).abs() <= 0.02, "target {target}: {observed:.3}");
    }
}
