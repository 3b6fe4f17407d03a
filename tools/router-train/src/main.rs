//! `router-train write|check|report [repo-root]`:
//! - `write` trains on every row and writes the weights file;
//! - `check` fails if the data no longer gives the shipped weights file;
//! - `report` prints every router's figures on held-out data (what `scripts/bench` shows);
//! - `tune` prints the learned router's figures on folds 1 to 4 with fold 0 left out of
//!   training and scoring: what a change of `train::PARAMS` is judged by;
//! - `speed` prints the report's timings alone;
//! - `score FILE` prints the shipped weights' mode and tier accuracy on a labelled JSONL file
//!   they were not trained on (new prompts, before they join `tests/routing`).
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use opencode_core::routing::features::extract;
use opencode_core::routing::learned::{LearnedRouter, Tables};
use opencode_core::routing::{ComplexityAnalyzer, RouteInput, Router};
use router_train::data::{self, Graded, FOLDS};
use router_train::eval::{apgr, curve, random, share_for};
use router_train::{generate, root_from_args, train, Corpus, GRADED, WEIGHTS_FILE};

fn main() {
    let root = root_from_args();
    let command = std::env::args().nth(1).unwrap_or_default();
    let result = match command.as_str() {
        "write" => generate(&root)
            .and_then(|text| std::fs::write(root.join(WEIGHTS_FILE), text).map_err(|e| format!("{WEIGHTS_FILE}: {e}"))),
        "check" => generate(&root).and_then(|text| {
            let shipped =
                std::fs::read_to_string(root.join(WEIGHTS_FILE)).map_err(|e| format!("{WEIGHTS_FILE}: {e}"))?;
            if shipped == text {
                Ok(())
            } else {
                Err(format!("{WEIGHTS_FILE} is not what the data gives: run `router-train write`"))
            }
        }),
        "report" => Corpus::load(&root, train::PARAMS).map(|corpus| report(&corpus)),
        "tune" => Corpus::load(&root, train::PARAMS).map(|corpus| tune(&corpus)),
        "speed" => Corpus::load(&root, train::PARAMS).map(|corpus| speed(&corpus)),
        "score" => std::env::args()
            .nth(2)
            .ok_or_else(|| "usage: router-train score FILE".to_owned())
            .and_then(|file| data::labelled(std::path::Path::new(&file)))
            .map(|rows| score(&rows)),
        _ => Err("usage: router-train write|check|report|tune|speed|score FILE [repo-root]".to_owned()),
    };
    if let Err(err) = result {
        eprintln!("router-train: {err}");
        std::process::exit(1);
    }
}

fn line(name: &str, points: &[(f64, f64)]) {
    println!(
        "  {name:<30} APGR {:.3}   strong share for 50% of the gap {:>5.1}%, for 80% {:>5.1}%",
        apgr(points),
        100.0 * share_for(points, 0.5),
        100.0 * share_for(points, 0.8)
    );
}

fn is_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// The two row sets every figure is given for.
/// Which prompts a figure is for.
type PromptSet = fn(&str) -> bool;
/// Which labelled prompts (by row and text) an accuracy is for.
type LabelledGroup = fn(usize, &str) -> bool;

const SETS: [(&str, PromptSet); 2] = [("all folds", |_| true), ("fold 0 only", |prompt| data::fold(prompt) == 0)];

fn report(corpus: &Corpus) {
    let start = Instant::now();
    let held_out = corpus.cross_validate();
    println!(
        "== routers on held-out data ({:.1} s) ==\n\
         {FOLDS}-fold cross-validation: a row's fold is a hash of its prompt, fixed before training; every learned\n\
         figure comes from the model trained without the row's fold. The training settings were chosen on folds 1-4\n\
         (train on three, measure on the fourth): fold 0 never informed a choice, so its figures are the clean ones.",
        start.elapsed().as_secs_f64()
    );
    let lexicon = ComplexityAnalyzer::default();
    for ((name, (all_rows, _)), all_learned) in GRADED.iter().zip(&corpus.graded).zip(&held_out.graded) {
        for (set, keep) in SETS {
            let picked: Vec<usize> = (0..all_rows.len()).filter(|&i| keep(&all_rows[i].prompt)).collect();
            let rows: Vec<Graded> = picked.iter().map(|&i| all_rows[i].clone()).collect();
            let learned: Vec<f64> = picked.iter().map(|&i| all_learned[i]).collect();
            let n = rows.len() as f64;
            let weak = rows.iter().filter(|r| r.weak).count() as f64 / n;
            let strong = rows.iter().filter(|r| r.strong).count() as f64 / n;
            println!(
                "{name}, {set}: {} prompts, weak {:.1}% right, strong {:.1}%",
                rows.len(),
                100.0 * weak,
                100.0 * strong
            );
            line("learned (held-out)", &curve(&rows, &learned));
            let scores: Vec<f64> = rows.iter().map(|r| lexicon.score(&RouteInput::new(&r.prompt))).collect();
            line("lexicon (complexity score)", &curve(&rows, &scores));
            let lengths: Vec<f64> = rows.iter().map(|r| r.prompt.chars().count() as f64).collect();
            line("prompt length", &curve(&rows, &lengths));
            let seeds = 20;
            let random_apgr: f64 =
                (0..seeds).map(|seed| apgr(&curve(&rows, &random(rows.len(), 1000 + seed)))).sum::<f64>()
                    / seeds as f64;
            println!("  {:<30} APGR {random_apgr:.3}", format!("random (mean of {seeds} seeds)"));
        }
    }
    accuracy(corpus, &held_out);
    speed(corpus);
}

/// The shipped learned router and the lexicon on new labelled prompts, per language.
fn score(rows: &[data::Labelled]) {
    let (learned, lexicon) = (LearnedRouter::default(), ComplexityAnalyzer::default());
    println!("the shipped weights on {} prompts they were not trained on: mode and tier accuracy", rows.len());
    let groups: [(&str, PromptSet); 3] = [("all", |_| true), ("English", |p| !is_chinese(p)), ("Chinese", is_chinese)];
    for (group, keep) in groups {
        let (mut n, mut counts) = (0, [0_usize; 4]);
        for row in rows.iter().filter(|row| keep(&row.prompt)) {
            n += 1;
            let input = RouteInput::new(&row.prompt);
            for (k, decision) in [learned.route(&input), lexicon.route(&input)].into_iter().enumerate() {
                counts[2 * k] += usize::from(decision.mode == row.mode);
                counts[2 * k + 1] += usize::from(decision.tier == row.tier);
            }
        }
        let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
        println!(
            "  {group:<8} {n:>4}: learned mode {:>5.1}% tier {:>5.1}%   lexicon mode {:>5.1}% tier {:>5.1}%",
            pct(counts[0]),
            pct(counts[1]),
            pct(counts[2]),
            pct(counts[3])
        );
    }
}

fn accuracy(corpus: &Corpus, held_out: &router_train::HeldOut) {
    println!(
        "labelled prompts (tests/routing/prompts.jsonl, {} prompts): mode and tier accuracy",
        corpus.labelled.len()
    );
    let lexicon = ComplexityAnalyzer::default();
    let groups: [(&str, LabelledGroup); 4] = [
        ("all", |_, _| true),
        ("English", |_, p| !is_chinese(p)),
        ("Chinese", |_, p| is_chinese(p)),
        ("written after the lexicon (232+)", |i, _| i >= 231),
    ];
    for (set, in_set) in SETS {
        for (group, keep) in groups {
            let (mut n, mut learned_mode, mut learned_tier, mut lexicon_mode, mut lexicon_tier) = (0, 0, 0, 0, 0);
            for (i, (row, (mode, tier, _))) in corpus.labelled.iter().zip(&held_out.labelled).enumerate() {
                if !keep(i, &row.prompt) || !in_set(&row.prompt) {
                    continue;
                }
                n += 1;
                learned_mode += usize::from(*mode == row.mode);
                learned_tier += usize::from(*tier == row.tier);
                let decision = lexicon.route(&RouteInput::new(&row.prompt));
                lexicon_mode += usize::from(decision.mode == row.mode);
                lexicon_tier += usize::from(decision.tier == row.tier);
            }
            let pct = |k: usize| 100.0 * k as f64 / n.max(1) as f64;
            println!(
                "  {:<45} {n:>4}: learned (held-out) mode {:>5.1}% tier {:>5.1}%   lexicon mode {:>5.1}% tier {:>5.1}%",
                format!("{set}, {group}"),
                pct(learned_mode),
                pct(learned_tier),
                pct(lexicon_mode),
                pct(lexicon_tier)
            );
        }
    }
}

fn speed(corpus: &Corpus) {
    let trained = corpus.train_all();
    let tables = Tables::unpack(&trained.weights());
    let learned = LearnedRouter::new(trained.weights(), &tables);
    let lexicon = ComplexityAnalyzer::default();
    let english = "Please compare the latency of our Python ingestion service with the Rust rewrite, then \
                   write a short report with a table and a recommendation. ";
    let chinese = "请分析上周的日志，列出所有p99超过250毫秒的接口，然后写一份简短的报告给团队。";
    println!("speed (ns per call, a 2 KB prompt, release build, one core, fastest of 30 batches; target: learned score under 20000):");
    for (name, part) in [("English", english), ("Chinese", chinese)] {
        let text: String = part
            .chars()
            .cycle()
            .scan(0, |bytes, c| {
                *bytes += c.len_utf8();
                (*bytes <= 2048).then_some(c)
            })
            .collect();
        let input = RouteInput::new(&text);
        // The fastest of 30 batches of 200 calls: the machine's noise only ever adds time.
        let time = |f: &dyn Fn() -> f64| {
            (0..30)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..200 {
                        black_box(f());
                    }
                    start.elapsed().as_nanos() as f64 / 200.0
                })
                .fold(f64::INFINITY, f64::min)
        };
        println!(
            "  {name:<8} learned score {:>7.0}  route {:>7.0}   (its features alone {:>7.0})   lexicon score {:>7.0}  route {:>7.0}",
            time(&|| learned.score(black_box(&input))),
            time(&|| learned.route(black_box(&input)).score),
            time(&|| f64::from(extract(black_box(&input), |hash| {
                black_box(hash);
            })
            .tokens)),
            time(&|| lexicon.score(black_box(&input))),
            time(&|| lexicon.route(black_box(&input)).score),
        );
    }
}

/// The learned router on folds 1 to 4, fold 0 left out entirely.
fn tune(corpus: &Corpus) {
    let held_out = corpus.cross_validate_without(Some(0));
    let in_tuning = |prompt: &str| data::fold(prompt) != 0;
    for ((name, (rows, _)), scores) in GRADED.iter().zip(&corpus.graded).zip(&held_out.graded) {
        let picked: Vec<usize> = (0..rows.len()).filter(|&i| in_tuning(&rows[i].prompt)).collect();
        let kept: Vec<Graded> = picked.iter().map(|&i| rows[i].clone()).collect();
        let learned: Vec<f64> = picked.iter().map(|&i| scores[i]).collect();
        let lengths: Vec<f64> = kept.iter().map(|r| r.prompt.chars().count() as f64).collect();
        println!(
            "{name}: learned APGR {:.3}, prompt length {:.3}",
            apgr(&curve(&kept, &learned)),
            apgr(&curve(&kept, &lengths))
        );
    }
    let (mut n, mut modes, mut tiers) = (0, 0, 0);
    for (row, (mode, tier, _)) in corpus.labelled.iter().zip(&held_out.labelled).filter(|(r, _)| in_tuning(&r.prompt)) {
        n += 1;
        modes += usize::from(*mode == row.mode);
        tiers += usize::from(*tier == row.tier);
    }
    println!(
        "labelled: mode {:.1}%, tier {:.1}% of {n}",
        100.0 * modes as f64 / n as f64,
        100.0 * tiers as f64 / n as f64
    );
}
