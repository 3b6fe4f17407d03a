//! RouteLLM's weak/strong evaluation: the quality/cost curve of a score, its area (APGR) and
//! the strong-call share a target needs.

use crate::data::Graded;

/// The curve of sending the highest-scoring prompts to the strong model, one point per
/// distinct threshold: (strong-call share, performance gap recovered).
pub fn curve(items: &[Graded], scores: &[f64]) -> Vec<(f64, f64)> {
    let n = items.len().max(1) as f64;
    let weak = items.iter().filter(|i| i.weak).count() as f64 / n;
    let strong = items.iter().filter(|i| i.strong).count() as f64 / n;
    let mut order: Vec<(f64, &Graded)> = scores.iter().copied().zip(items).collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = vec![(0.0, 0.0)];
    let (mut quality, mut taken) = (weak, 0_usize);
    let mut rest = order.as_slice();
    while let Some(&(score, _)) = rest.first() {
        // A threshold cannot split equal scores: a tie group moves to strong together.
        let group = rest.iter().take_while(|(s, _)| *s == score).count();
        let (tied, after) = rest.split_at(group);
        for (_, item) in tied {
            quality += (f64::from(u8::from(item.strong)) - f64::from(u8::from(item.weak))) / n;
        }
        taken = taken.saturating_add(group);
        rest = after;
        points.push((taken as f64 / n, (quality - weak) / (strong - weak)));
    }
    points
}

/// The area under the curve: the average performance gap recovered over every share.
pub fn apgr(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| match w {
            [(x0, y0), (x1, y1)] => (x1 - x0) * (y0 + y1) / 2.0,
            _ => 0.0,
        })
        .sum()
}

/// The smallest strong-call share at which the curve reaches `target` (interpolated).
pub fn share_for(points: &[(f64, f64)], target: f64) -> f64 {
    for w in points.windows(2) {
        if let [(x0, y0), (x1, y1)] = *w {
            if y1 >= target {
                return if y1 > y0 { x0 + (x1 - x0) * ((target - y0).max(0.0) / (y1 - y0)) } else { x1 };
            }
        }
    }
    1.0
}

/// SplitMix64 numbers in `[0, 1)`: a reproducible random router, or a shuffle.
pub fn random(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        })
        .collect()
}
