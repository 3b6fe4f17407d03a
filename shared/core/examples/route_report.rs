//! Benchmark report of the ComplexityAnalyzer: speed, accuracy on the labelled prompt set,
//! and the RouteLLM weak/strong evaluation against a random router.
//!
//! ```text
//! cargo run --release -p opencode-core --example route_report -- <repo-root>
//! ```
//!
//! The repository root defaults to the current directory; the RouteLLM data to
//! `<root>/../shared/bench-data/routellm`, or `$ROUTELLM_DATA`. Optional: `$ROUTER_CONFIG`, an
//! analyzer configuration as JSON; `$ROUTE_PROMPTS`, another labelled prompt file;
//! `$ROUTE_REPORT`, the sections to run (default `speed,accuracy,routellm`). It only prints
//! numbers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opencode_core::routing::{ComplexityAnalyzer, Mode, RouteInput, Router, Tier};

const ENGLISH: &[&str] = &[
    "We need to compare the latency of our Python ingestion service with the Rust rewrite. ",
    "Please analyze last week's logs and list every endpoint whose p99 went above 250 ms. ",
    "Then write a short report for the team, with a table and a recommendation at the end. ",
    "The report must be under 800 words and should mention the cost of each option. ",
    "Also, what would you change first, and why? Think about the trade-offs carefully. ",
    "For context, the service handles about 1,200 requests per second at peak, mostly JSON. ",
    "Our docs say the cache hit ratio is 0.83, but I am not sure that is still current. ",
    "If something is unclear, make reasonable assumptions and state them explicitly. ",
];

const CHINESE: &[&str] = &[
    "我们需要比较一下用Python写的数据导入服务和用Rust重写之后的延迟表现。",
    "请分析上周的日志，列出所有p99超过250毫秒的接口，并说明可能的原因。",
    "然后帮我写一份简短的报告给团队，最后给出建议，字数不超过八百字。",
    "根據我們的文檔，快取命中率是百分之八十三，但我不確定這個數字現在還準確。",
    "另外，如果你來決定，會先改哪一個部分？為什麼？請仔細權衡優缺點。",
    "服務在高峰期每秒大約處理一千兩百個請求，大部分是JSON格式的資料。",
];

fn sample(parts: &[&str], bytes: usize) -> String {
    let mut text = String::new();
    for c in parts.iter().cycle().flat_map(|p| p.chars()) {
        if text.len() + c.len_utf8() > bytes {
            break;
        }
        text.push(c);
    }
    text
}

/// Nanoseconds per call of `f` on `text`, over at least `budget` of calls.
fn time_per_call(text: &str, budget: Duration, f: impl Fn(&RouteInput<'_>) -> f64) -> f64 {
    let input = RouteInput::new(text);
    for _ in 0..100 {
        black_box(f(black_box(&input)));
    }
    let mut calls = 0_u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..200 {
            black_box(f(black_box(&input)));
        }
        calls += 200;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn speed(analyzer: &ComplexityAnalyzer) {
    println!("== (a) speed (ns per call, release build, one core) ==");
    let budget = Duration::from_millis(300);
    println!("{:<28} {:>12} {:>12}", "prompt", "route()", "score()");
    for (name, parts) in [("2 KB English", ENGLISH), ("2 KB Chinese", CHINESE)] {
        let text = sample(parts, 2048);
        let route = time_per_call(&text, budget, |i| analyzer.route(i).score);
        let score = time_per_call(&text, budget, |i| analyzer.score(i));
        let label = format!("{name} ({} chars)", text.chars().count());
        println!("{label:<28} {route:>12.0} {score:>12.0}");
    }
    println!("linearity (score(), ns per call and per KB):");
    for (name, parts) in [("English", ENGLISH), ("Chinese", CHINESE)] {
        for kb in [0.5, 1.0, 2.0, 4.0, 8.0] {
            let text = sample(parts, (kb * 1024.0) as usize);
            let ns = time_per_call(&text, budget, |i| analyzer.score(i));
            println!("  {name} {kb:>4} KB: {ns:>9.0} ns  ({:>6.0} ns/KB)", ns / kb);
        }
    }
    println!();
}

fn accuracy(analyzer: &ComplexityAnalyzer, root: &Path) {
    let path = std::env::var_os("ROUTE_PROMPTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/routing/prompts.jsonl"));
    println!("== (b) accuracy on {} ==", path.display());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut confusion: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let (mut total, mut mode_ok, mut tier_ok, mut both_ok) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let prompt = row["prompt"].as_str().unwrap();
        let mode = Mode::parse(row["mode"].as_str().unwrap()).unwrap();
        let tier = if row["tier"] == "system2" { Tier::System2 } else { Tier::System1 };
        let decision = analyzer.route(&RouteInput::new(prompt));
        total += 1;
        mode_ok += usize::from(decision.mode == mode);
        tier_ok += usize::from(decision.tier == tier);
        both_ok += usize::from(decision.mode == mode && decision.tier == tier);
        *confusion.entry((mode.as_str(), decision.mode.as_str())).or_default() += 1;
        if decision.mode != mode || decision.tier != tier {
            misses.push(format!(
                "  want {mode}/{tier}, got {}/{} ({:.2}): {}",
                decision.mode,
                decision.tier,
                decision.score,
                prompt.replace('\n', " ").chars().take(90).collect::<String>()
            ));
        }
    }
    let pct = |n: usize| 100.0 * n as f64 / total as f64;
    println!("prompts: {total}");
    println!("mode accuracy: {:.1}% ({mode_ok}/{total})", pct(mode_ok));
    println!("tier accuracy: {:.1}% ({tier_ok}/{total})", pct(tier_ok));
    println!("mode and tier: {:.1}% ({both_ok}/{total})", pct(both_ok));
    print!("confusion (rows: label, columns: decision)\n{:<10}", "");
    for m in Mode::ALL {
        print!("{:>10}", m.as_str());
    }
    println!("{:>8}", "recall");
    for want in Mode::ALL {
        print!("{:<10}", want.as_str());
        let row_total: usize =
            Mode::ALL.iter().map(|g| confusion.get(&(want.as_str(), g.as_str())).copied().unwrap_or(0)).sum();
        for got in Mode::ALL {
            print!("{:>10}", confusion.get(&(want.as_str(), got.as_str())).copied().unwrap_or(0));
        }
        let right = confusion.get(&(want.as_str(), want.as_str())).copied().unwrap_or(0);
        println!("{:>7.0}%", 100.0 * right as f64 / row_total.max(1) as f64);
    }
    println!("misrouted (mode or tier):");
    for miss in &misses {
        println!("{miss}");
    }
    println!();
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes (doubled) and newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

struct Item {
    prompt: String,
    weak: bool,
    strong: bool,
}

fn load(path: &Path) -> Vec<Item> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows = parse_csv(&text);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (p, w, s) = (col("prompt"), col("weak_correct"), col("strong_correct"));
    rows[1..].iter().map(|r| Item { prompt: r[p].clone(), weak: r[w] == "True", strong: r[s] == "True" }).collect()
}

/// The quality/cost curve of sending the highest-scoring prompts to the strong model, one
/// point per distinct threshold: (strong-call share, performance gap recovered).
fn curve(items: &[Item], scores: &[f64]) -> Vec<(f64, f64)> {
    let n = items.len() as f64;
    let weak = items.iter().filter(|i| i.weak).count() as f64 / n;
    let strong = items.iter().filter(|i| i.strong).count() as f64 / n;
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![(0.0, 0.0)];
    let (mut quality, mut taken) = (weak, 0);
    let mut k = 0;
    while k < order.len() {
        // A threshold cannot split equal scores: a tie group moves to strong together.
        let s = scores[order[k]];
        while k < order.len() && scores[order[k]] == s {
            let item = &items[order[k]];
            quality += (f64::from(u8::from(item.strong)) - f64::from(u8::from(item.weak))) / n;
            taken += 1;
            k += 1;
        }
        points.push((taken as f64 / n, (quality - weak) / (strong - weak)));
    }
    points
}

fn apgr(points: &[(f64, f64)]) -> f64 {
    points.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum()
}

/// The smallest strong-call share at which the curve reaches `target` (interpolated).
fn share_for(points: &[(f64, f64)], target: f64) -> f64 {
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if y1 >= target {
            return if y1 > y0 { x0 + (x1 - x0) * ((target - y0).max(0.0) / (y1 - y0)) } else { x1 };
        }
    }
    1.0
}

/// SplitMix64: a fixed-seed random router, reproducible across runs.
fn random_scores(n: usize, seed: u64) -> Vec<f64> {
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

fn report_line(name: &str, points: &[(f64, f64)]) {
    println!(
        "  {name:<26} APGR {:.3}   share for 50% gap {:>5.1}%   for 80% gap {:>5.1}%",
        apgr(points),
        100.0 * share_for(points, 0.5),
        100.0 * share_for(points, 0.8)
    );
}

fn routellm(analyzer: &ComplexityAnalyzer, data: &Path) {
    println!("== (c) RouteLLM evaluation ({}) ==", data.display());
    for file in ["gsm8k.csv", "mmlu.csv"] {
        let items = load(&data.join(file));
        let n = items.len() as f64;
        let weak = items.iter().filter(|i| i.weak).count() as f64 / n;
        let strong = items.iter().filter(|i| i.strong).count() as f64 / n;
        println!("{file}: {} prompts, weak {:.1}%, strong {:.1}%", items.len(), 100.0 * weak, 100.0 * strong);
        let start = Instant::now();
        let scores: Vec<f64> = items.iter().map(|i| analyzer.score(&RouteInput::new(&i.prompt))).collect();
        let elapsed = start.elapsed();
        let distinct = {
            let mut s = scores.clone();
            s.sort_by(f64::total_cmp);
            s.dedup();
            s.len()
        };
        println!(
            "  scored in {:.1} ms ({:.0} ns/prompt), {distinct} distinct scores",
            elapsed.as_secs_f64() * 1e3,
            elapsed.as_nanos() as f64 / n
        );
        let mut modes: BTreeMap<&str, usize> = BTreeMap::new();
        for item in &items {
            *modes.entry(analyzer.route(&RouteInput::new(&item.prompt)).mode.as_str()).or_default() += 1;
        }
        let modes: Vec<String> = modes.iter().map(|(m, k)| format!("{m} {:.0}%", 100.0 * *k as f64 / n)).collect();
        println!("  modes chosen: {}", modes.join(", "));
        report_line("complexity score", &curve(&items, &scores));
        let lengths: Vec<f64> = items.iter().map(|i| i.prompt.chars().count() as f64).collect();
        report_line("prompt length only", &curve(&items, &lengths));
        report_line("random (seed 42)", &curve(&items, &random_scores(items.len(), 42)));
        let seeds = 20;
        let mean = (0..seeds).map(|seed| apgr(&curve(&items, &random_scores(items.len(), 1000 + seed)))).sum::<f64>()
            / seeds as f64;
        println!("  random, mean APGR of {seeds} seeds: {mean:.3}");
        let threshold = analyzer.config().threshold;
        let to_strong: Vec<&Item> =
            items.iter().zip(&scores).filter(|(_, s)| **s >= threshold).map(|(i, _)| i).collect();
        let quality =
            items.iter().zip(&scores).filter(|(i, s)| if **s >= threshold { i.strong } else { i.weak }).count() as f64
                / n;
        println!(
            "  at the default threshold {threshold}: {:.1}% strong calls, quality {:.1}%, gap recovered {:.1}%",
            100.0 * to_strong.len() as f64 / n,
            100.0 * quality,
            100.0 * (quality - weak) / (strong - weak)
        );
    }
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_owned()));
    let data = std::env::var_os("ROUTELLM_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bench-data/routellm"));
    let analyzer = match std::env::var("ROUTER_CONFIG") {
        Ok(json) => ComplexityAnalyzer::from_json(&json).unwrap_or_else(|e| panic!("{e}")),
        Err(_) => ComplexityAnalyzer::default(),
    };
    let sections = std::env::var("ROUTE_REPORT").unwrap_or_else(|_| "speed,accuracy,routellm".into());
    let run = |name: &str| sections.split(',').any(|s| s.trim() == name);
    if run("speed") {
        speed(&analyzer);
    }
    if run("accuracy") {
        accuracy(&analyzer, &root);
    }
    if run("routellm") {
        routellm(&analyzer, &data);
    }
}
