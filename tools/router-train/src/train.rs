//! Logistic regression (the tier) and softmax regression (the mode) over the router's
//! features, by AdaGrad in a fixed order: the same data always gives the same weights.

use opencode_core::routing::features::{extract, DENSE, KINDS};
use opencode_core::routing::learned::Weights;
use opencode_core::routing::{Mode, RouteInput};

use crate::eval::random;

/// One model's settings.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    pub epochs: u64,
    pub rate: f32,
    pub l2: f32,
}

/// The training's settings, chosen by cross-validation on folds 1 to 4 only (fold 0 never
/// informed a choice).
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Hashed buckets of the tier model (per kind of text) and of the mode model (powers of two).
    pub tier_buckets: usize,
    pub mode_buckets: usize,
    /// Per kind of text (its tables are its own).
    pub tier: [Fit; KINDS],
    pub mode: Fit,
    /// Weight of a labelled prompt against a RouteLLM row in the tier model.
    pub labelled_weight: f32,
}

pub const PARAMS: Params = Params {
    tier_buckets: 2048,
    mode_buckets: 2048,
    tier: [
        Fit { epochs: 8, rate: 0.3, l2: 1e-2 },
        Fit { epochs: 8, rate: 0.01, l2: 1e-2 },
        Fit { epochs: 8, rate: 0.01, l2: 1e-2 },
    ],
    mode: Fit { epochs: 12, rate: 0.05, l2: 1e-5 },
    labelled_weight: 4.0,
};

/// A prompt's features, with its hashed tokens reduced to each model's buckets.
#[derive(Debug, Clone)]
pub struct Sample {
    kind: usize,
    tier_buckets: usize,
    dense: [f32; DENSE],
    tier: Vec<(usize, f32)>,
    mode: Vec<(usize, f32)>,
}

fn sum_duplicates(mut entries: Vec<(usize, f32)>) -> Vec<(usize, f32)> {
    entries.sort_by_key(|e| e.0);
    let mut out: Vec<(usize, f32)> = Vec::with_capacity(entries.len());
    for (index, value) in entries {
        match out.last_mut() {
            Some(last) if last.0 == index => last.1 += value,
            _ => out.push((index, value)),
        }
    }
    out
}

impl Sample {
    pub fn new(prompt: &str, params: &Params) -> Sample {
        let (mut tier, mut mode) = (Vec::new(), Vec::new());
        let features = extract(&RouteInput::new(prompt), |hash| {
            tier.push(hash as usize & (params.tier_buckets - 1));
            mode.push((hash >> 32) as usize & (params.mode_buckets - 1));
        });
        let scale = features.scale();
        let scaled = |buckets: Vec<usize>| sum_duplicates(buckets.into_iter().map(|b| (b, scale)).collect());
        Sample {
            kind: features.kind as usize,
            tier_buckets: params.tier_buckets,
            dense: features.dense,
            tier: scaled(tier),
            mode: scaled(mode),
        }
    }

    /// The tier model's inputs: the dense features in their kind's slot, then the buckets of
    /// the kind's table.
    fn tier_entries(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        let offset = self.kind * DENSE;
        let dense = self.dense.iter().enumerate().map(move |(j, x)| (offset + j, *x));
        let buckets = KINDS * DENSE + self.kind * self.tier_buckets;
        dense.chain(self.tier.iter().map(move |(b, x)| (buckets + b, *x)))
    }

    /// The mode model's inputs: the dense features, then the buckets.
    fn mode_entries(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.dense.iter().copied().enumerate().chain(self.mode.iter().map(|(b, x)| (DENSE + b, *x)))
    }
}

/// One tier example: its target in `[0, 1]` and its weight.
pub struct TierExample<'s> {
    pub sample: &'s Sample,
    pub target: f32,
    pub weight: f32,
}

/// The order of an epoch: a fixed shuffle per epoch.
fn order(n: usize, epoch: u64) -> Vec<usize> {
    let keys = random(n, 0x5eed_0000 + epoch);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys.get(a).unwrap_or(&0.0).total_cmp(keys.get(b).unwrap_or(&0.0)));
    order
}

/// AdaGrad's step on one weight.
fn step(weight: &mut f32, squares: &mut f32, gradient: f32, params: &Fit) {
    let g = gradient + params.l2 * *weight;
    *squares += g * g;
    *weight -= params.rate * g / (squares.sqrt() + 1e-8);
}

/// `exp` in `f64`, rounded to `f32`: the `f32` one differed by an ulp between the dev and the
/// release build (two libm implementations), which AdaGrad's steps grew into different
/// weights; an `f64` result that far from an `f32` rounding boundary rounds the same.
fn exp(x: f32) -> f32 {
    f64::from(x).exp() as f32
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// The tier model's float weights: `DENSE` dense ones, then one per bucket.
pub fn tier(examples: &[TierExample<'_>], params: &Params) -> Vec<f32> {
    let size = KINDS * (DENSE + params.tier_buckets);
    let (mut w, mut g2) = (vec![0.0_f32; size], vec![0.0_f32; size]);
    let epochs = params.tier.iter().map(|fit| fit.epochs).max().unwrap_or(0);
    for epoch in 0..epochs {
        for i in order(examples.len(), epoch) {
            let Some(example) = examples.get(i) else { continue };
            let Some(fit) = params.tier.get(example.sample.kind).filter(|fit| epoch < fit.epochs) else { continue };
            let entries = || example.sample.tier_entries();
            let z: f32 = entries().map(|(j, x)| w.get(j).unwrap_or(&0.0) * x).sum();
            let error = (sigmoid(z) - example.target) * example.weight;
            for (j, x) in entries() {
                if let (Some(weight), Some(squares)) = (w.get_mut(j), g2.get_mut(j)) {
                    step(weight, squares, error * x, fit);
                }
            }
        }
    }
    w
}

/// The mode model's float weights: six per feature (the modes in `Mode::ALL` order).
pub fn mode(examples: &[(&Sample, Mode)], params: &Params) -> Vec<f32> {
    let size = (DENSE + params.mode_buckets) * 6;
    let fit = &params.mode;
    let (mut w, mut g2) = (vec![0.0_f32; size], vec![0.0_f32; size]);
    for epoch in 0..fit.epochs {
        for i in order(examples.len(), epoch) {
            let Some((sample, label)) = examples.get(i) else { continue };
            let entries = || sample.mode_entries();
            let mut z = [0.0_f32; 6];
            for (j, x) in entries() {
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk += w.get(j * 6 + k).unwrap_or(&0.0) * x;
                }
            }
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = z.iter().map(|zk| exp(zk - max)).collect();
            let total: f32 = exps.iter().sum();
            for (j, x) in entries() {
                for (k, (e, m)) in exps.iter().zip(Mode::ALL).enumerate() {
                    let error = e / total - f32::from(u8::from(m == *label));
                    if let (Some(weight), Some(squares)) = (w.get_mut(j * 6 + k), g2.get_mut(j * 6 + k)) {
                        step(weight, squares, error * x, fit);
                    }
                }
            }
        }
    }
    w
}

/// Float weights as shipped: the dense ones kept, the buckets as 4-bit integers (`-7..=7`)
/// times one scale, two to a byte. The scale maps the 99.5th percentile of the magnitudes to
/// 7: the few larger weights are clipped rather than coarsening every other one.
fn quantize(buckets: &[f32]) -> (Vec<u8>, f32) {
    let mut magnitudes: Vec<f32> = buckets.iter().map(|w| w.abs()).collect();
    magnitudes.sort_by(f32::total_cmp);
    let top = magnitudes.get(magnitudes.len() * 995 / 1000).copied().unwrap_or(0.0);
    let scale = if top > 0.0 { top / 7.0 } else { 1.0 };
    let level = |w: &f32| ((w / scale).round().clamp(-7.0, 7.0) as i8 as u8) & 0x0f;
    let packed = buckets.chunks(2).map(|pair| level(&pair[0]) | pair.get(1).map_or(0, |w| level(w) << 4)).collect();
    (packed, scale)
}

/// A trained router, owning what [`Weights`] borrows.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    pub tier_dense: [[f32; DENSE]; KINDS],
    pub tier_buckets: Vec<u8>,
    pub tier_scales: [f32; KINDS],
    pub mode_dense: [[f32; DENSE]; 6],
    pub mode_buckets: Vec<u8>,
    pub mode_scale: f32,
    pub share_thresholds: Vec<f32>,
    /// The same tables for the lexicon (its default configuration) and the length router.
    pub lexicon_shares: Vec<f32>,
    pub length_shares: Vec<f32>,
}

impl Trained {
    pub fn new(tier: &[f32], mode: &[f32]) -> Trained {
        let mut tier_dense = [[0.0; DENSE]; KINDS];
        let (dense, buckets) = tier.split_at((KINDS * DENSE).min(tier.len()));
        for (row, values) in tier_dense.iter_mut().zip(dense.chunks(DENSE)) {
            row.copy_from_slice(values);
        }
        // Each kind on its own scale: the requests' weights are far larger than the benchmarks'.
        let mut tier_buckets = Vec::new();
        let mut tier_scales = [0.0; KINDS];
        for (table, scale) in buckets.chunks(buckets.len() / KINDS).zip(&mut tier_scales) {
            let (packed, table_scale) = quantize(table);
            tier_buckets.extend(packed);
            *scale = table_scale;
        }
        let mut mode_dense = [[0.0; DENSE]; 6];
        let (dense, buckets) = mode.split_at((DENSE * 6).min(mode.len()));
        for (j, row) in dense.chunks(6).enumerate() {
            for (k, value) in row.iter().enumerate() {
                if let Some(slot) = mode_dense.get_mut(k).and_then(|m| m.get_mut(j)) {
                    *slot = *value;
                }
            }
        }
        let (mode_buckets, mode_scale) = quantize(buckets);
        Trained {
            tier_dense,
            tier_buckets,
            tier_scales,
            mode_dense,
            mode_buckets,
            mode_scale,
            share_thresholds: Vec::new(),
            lexicon_shares: Vec::new(),
            length_shares: Vec::new(),
        }
    }

    pub fn weights(&self) -> Weights<'_> {
        Weights {
            tier_dense: &self.tier_dense,
            tier_buckets: &self.tier_buckets,
            tier_scales: self.tier_scales,
            mode_dense: &self.mode_dense,
            mode_buckets: &self.mode_buckets,
            mode_scale: self.mode_scale,
            share_thresholds: &self.share_thresholds,
        }
    }
}

/// The thresholds that send 0%, 5%, ... 100% of these scores to System 2: between the
/// scores on either side of each share, 1 above all, 0 below all.
pub fn share_thresholds(scores: &[f64]) -> Vec<f32> {
    let mut sorted: Vec<f64> = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let n = sorted.len();
    (0..=20)
        .map(|step| {
            let k = (n * step + 10) / 20;
            let threshold = match (k.checked_sub(1).and_then(|i| sorted.get(i)), sorted.get(k)) {
                (None, _) => 1.0,
                (Some(_), None) => 0.0,
                (Some(above), Some(below)) => (above + below) / 2.0,
            };
            threshold as f32
        })
        .collect()
}
