//! The ComplexityAnalyzer: a deterministic, explainable router in one pass over the prompt.
//!
//! The pass counts signals (length, questions, list items, numbers, operators, code fences
//! and symbols) and looks every word, phrase of up to four words and CJK keyword up in the
//! [lexicon](super::lexicon). Mode cues add evidence to a mode; the mode with the most evidence
//! wins if it has enough, else chat. Complexity signals add up to a raw score `r`, squashed to
//! `r / (1 + r)` in `[0, 1)`: the tier is System 2 when it reaches the threshold (`0.5` is
//! `r = 1`). Research and code add a bias towards System 2, thinking a smaller one, unless the
//! prompt is trivial (short, one question, no multi-step cue).

use serde::{Deserialize, Serialize};

use super::lexicon::Cue;
use super::scan::Scan;
use super::{Mode, RouteInput, Router, RoutingDecision, Tier};

/// One number per mode (per-mode multipliers on cue evidence).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModeWeights {
    pub chat: f64,
    pub knowledge: f64,
    pub search: f64,
    pub code: f64,
    pub thinking: f64,
    pub research: f64,
}

impl ModeWeights {
    /// The same value for every mode.
    pub const fn splat(value: f64) -> Self {
        ModeWeights { chat: value, knowledge: value, search: value, code: value, thinking: value, research: value }
    }

    pub const fn get(&self, mode: Mode) -> f64 {
        match mode {
            Mode::Chat => self.chat,
            Mode::Knowledge => self.knowledge,
            Mode::Search => self.search,
            Mode::Code => self.code,
            Mode::Thinking => self.thinking,
            Mode::Research => self.research,
        }
    }

    pub fn get_mut(&mut self, mode: Mode) -> &mut f64 {
        match mode {
            Mode::Chat => &mut self.chat,
            Mode::Knowledge => &mut self.knowledge,
            Mode::Search => &mut self.search,
            Mode::Code => &mut self.code,
            Mode::Thinking => &mut self.thinking,
            Mode::Research => &mut self.research,
        }
    }
}

impl Default for ModeWeights {
    fn default() -> Self {
        ModeWeights::splat(1.0)
    }
}

/// Weights and thresholds of the [`ComplexityAnalyzer`]. Every field has a default, so a JSON
/// configuration names only what it changes: `{"threshold": 0.6, "code_bias": 0.5}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzerConfig {
    /// System 2 when the score reaches this, in `[0, 1]`.
    pub threshold: f64,
    /// Length units of one CJK character (a Latin character is one unit).
    pub cjk_char_units: f64,
    /// Length adds `length_weight * ln(1 + units / length_scale)`.
    pub length_weight: f64,
    pub length_scale: f64,
    /// Per question after the first.
    pub question_weight: f64,
    /// Per sub-task connector (`then`, 然后) or list item.
    pub subtask_weight: f64,
    /// Per unit of multi-step cue (`compare`, `step by step`, 分析).
    pub step_weight: f64,
    /// Per constraint (`at least`, `must`, 不超过).
    pub constraint_weight: f64,
    /// Per number in the text (up to twice the cap).
    pub number_weight: f64,
    /// Per code block (plus one per twelve code symbols).
    pub code_block_weight: f64,
    /// Per earlier message in the conversation (up to twice the cap).
    pub conversation_weight: f64,
    /// Most counts are capped at this, so no single signal dominates.
    pub signal_cap: f64,
    /// Cue evidence a mode needs to beat chat, the default.
    pub min_mode_evidence: f64,
    /// Below these length units, with one question and no multi-step cue, a prompt is trivial.
    pub trivial_units: f64,
    /// A trivial prompt gets this fraction of its mode's bias.
    pub trivial_factor: f64,
    /// Added to the raw score by the chosen mode.
    pub research_bias: f64,
    pub code_bias: f64,
    pub thinking_bias: f64,
    pub knowledge_bias: f64,
    pub search_bias: f64,
    pub chat_bias: f64,
    /// Multiplies each mode's cue evidence before the modes are compared.
    pub mode_scale: ModeWeights,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            threshold: 0.5,
            cjk_char_units: 2.5,
            length_weight: 0.35,
            length_scale: 300.0,
            question_weight: 0.15,
            subtask_weight: 0.12,
            step_weight: 0.35,
            constraint_weight: 0.08,
            number_weight: 0.03,
            code_block_weight: 0.25,
            conversation_weight: 0.04,
            signal_cap: 5.0,
            min_mode_evidence: 0.8,
            trivial_units: 60.0,
            trivial_factor: 0.5,
            research_bias: 1.2,
            code_bias: 0.8,
            thinking_bias: 0.7,
            knowledge_bias: 0.15,
            search_bias: 0.1,
            chat_bias: 0.0,
            mode_scale: ModeWeights::default(),
        }
    }
}

/// Why a routing configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("routing config is not valid JSON for the analyzer: {0}")]
    Json(String),
    #[error("routing config field `{0}` must be a finite number >= 0 (threshold: in [0, 1])")]
    OutOfRange(&'static str),
}

impl AnalyzerConfig {
    /// Parses a JSON object (missing fields keep their defaults) and validates it.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let config: AnalyzerConfig = serde_json::from_str(json).map_err(|e| ConfigError::Json(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Every weight finite and non-negative, the threshold in `[0, 1]`, the scale positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let m = &self.mode_scale;
        let fields = [
            ("cjk_char_units", self.cjk_char_units),
            ("length_weight", self.length_weight),
            ("question_weight", self.question_weight),
            ("subtask_weight", self.subtask_weight),
            ("step_weight", self.step_weight),
            ("constraint_weight", self.constraint_weight),
            ("number_weight", self.number_weight),
            ("code_block_weight", self.code_block_weight),
            ("conversation_weight", self.conversation_weight),
            ("signal_cap", self.signal_cap),
            ("min_mode_evidence", self.min_mode_evidence),
            ("trivial_units", self.trivial_units),
            ("trivial_factor", self.trivial_factor),
            ("research_bias", self.research_bias),
            ("code_bias", self.code_bias),
            ("thinking_bias", self.thinking_bias),
            ("knowledge_bias", self.knowledge_bias),
            ("search_bias", self.search_bias),
            ("chat_bias", self.chat_bias),
            ("mode_scale.chat", m.chat),
            ("mode_scale.knowledge", m.knowledge),
            ("mode_scale.search", m.search),
            ("mode_scale.code", m.code),
            ("mode_scale.thinking", m.thinking),
            ("mode_scale.research", m.research),
        ];
        if let Some((name, _)) = fields.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return Err(ConfigError::OutOfRange(name));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(ConfigError::OutOfRange("threshold"));
        }
        if self.length_scale.is_nan() || self.length_scale <= 0.0 {
            return Err(ConfigError::OutOfRange("length_scale"));
        }
        Ok(())
    }

    /// The bias the chosen mode adds to the raw score.
    pub const fn bias(&self, mode: Mode) -> f64 {
        match mode {
            Mode::Chat => self.chat_bias,
            Mode::Knowledge => self.knowledge_bias,
            Mode::Search => self.search_bias,
            Mode::Code => self.code_bias,
            Mode::Thinking => self.thinking_bias,
            Mode::Research => self.research_bias,
        }
    }
}

/// Cue evidence of a fenced code block.
const FENCE_EVIDENCE: f64 = 2.0;
/// Thinking evidence of a word problem (a quantity question with numbers): a base and a
/// share per number, so a problem full of numbers outweighs an incidental `price` or `today`.
const WORD_PROBLEM_EVIDENCE: f64 = 0.8;
const WORD_PROBLEM_PER_NUMBER: f64 = 0.25;
/// Thinking evidence of numbers with operators (`15% of 240`, `3x + 7 = 22`).
const ARITHMETIC_EVIDENCE: f64 = 0.9;
/// Code symbols (`{ } ; [ ] _ \``) that count as code content, and per unit of evidence.
const MIN_CODE_SYMBOLS: u32 = 6;
const CODE_SYMBOLS_PER_UNIT: f64 = 12.0;
/// Ties go to the earlier mode; chat, the default, never wins a tie.
const PRIORITY: [Mode; 6] = [Mode::Research, Mode::Code, Mode::Knowledge, Mode::Search, Mode::Thinking, Mode::Chat];

/// The default [`Router`]: keyword and signal scoring, configurable by [`AnalyzerConfig`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComplexityAnalyzer {
    config: AnalyzerConfig,
}

impl ComplexityAnalyzer {
    /// An analyzer with this configuration (see [`AnalyzerConfig::validate`]).
    pub fn new(config: AnalyzerConfig) -> Self {
        ComplexityAnalyzer { config }
    }

    /// An analyzer configured by a JSON object (e.g. a configuration variable).
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        AnalyzerConfig::from_json(json).map(ComplexityAnalyzer::new)
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// The complexity score alone, without building reasons.
    pub fn score(&self, input: &RouteInput<'_>) -> f64 {
        self.evaluate(input, false).score
    }

    fn evaluate(&self, input: &RouteInput<'_>, explain: bool) -> RoutingDecision {
        let cfg = &self.config;
        let scan = Scan::run(input.text, explain);
        let mut reasons = Reasons(explain.then(Vec::new));
        for (text, cue) in &scan.hits {
            reasons.add(|| describe(text, *cue));
        }

        // Mode: cue evidence plus what the counted signals imply.
        let mut evidence = scan.modes;
        if scan.fences > 0 {
            evidence.code += FENCE_EVIDENCE;
            reasons.add(|| "code cue: code block".to_owned());
        }
        if scan.code_symbols >= MIN_CODE_SYMBOLS {
            evidence.code += (f64::from(scan.code_symbols) / CODE_SYMBOLS_PER_UNIT).min(1.5);
            reasons.add(|| format!("code cue: {} code symbols", scan.code_symbols));
        }
        let numeric = scan.fences == 0 && scan.numbers >= 2;
        if scan.fences == 0 && scan.numbers >= 1 && scan.math_question {
            let numbers = f64::from(scan.numbers).min(6.0);
            evidence.thinking += WORD_PROBLEM_EVIDENCE + WORD_PROBLEM_PER_NUMBER * numbers;
            reasons.add(|| format!("thinking cue: word problem with {} numbers", scan.numbers));
        } else if numeric && scan.operators > 0 {
            evidence.thinking += ARITHMETIC_EVIDENCE;
            reasons.add(|| format!("thinking cue: arithmetic with {} numbers", scan.numbers));
        }
        let mut mode = Mode::Chat;
        let mut best = f64::NEG_INFINITY;
        for candidate in PRIORITY {
            let e = evidence.get(candidate).max(0.0) * cfg.mode_scale.get(candidate);
            *evidence.get_mut(candidate) = e;
            if e > best {
                (mode, best) = (candidate, e);
            }
        }
        if mode != Mode::Chat && best < cfg.min_mode_evidence {
            reasons.add(|| format!("{mode} evidence {best:.2} is below {:.2}", cfg.min_mode_evidence));
            mode = Mode::Chat;
        }
        reasons.add(|| format!("mode {mode}: evidence {:.2}", evidence.get(mode)));

        // Complexity.
        let cap = cfg.signal_cap;
        let units = scan.latin_chars as f64 + scan.cjk_chars as f64 * cfg.cjk_char_units;
        let mut raw = cfg.length_weight * (units / cfg.length_scale).ln_1p();
        if units >= cfg.length_scale {
            let chars = scan.latin_chars.saturating_add(scan.cjk_chars);
            reasons.add(|| format!("long prompt: {chars} chars"));
        }
        if scan.questions > 1 {
            raw += cfg.question_weight * f64::from(scan.questions.saturating_sub(1)).min(cap);
            reasons.add(|| format!("{} questions", scan.questions));
        }
        let subtasks = scan.subtasks.saturating_add(scan.list_items);
        if subtasks > 0 {
            raw += cfg.subtask_weight * f64::from(subtasks).min(cap);
            reasons.add(|| format!("{subtasks} sub-task cues or list items"));
        }
        raw += cfg.step_weight * scan.steps.min(cap);
        raw += cfg.constraint_weight * f64::from(scan.constraints).min(cap);
        raw += cfg.number_weight * f64::from(scan.numbers).min(2.0 * cap);
        if scan.numbers >= 3 {
            reasons.add(|| format!("math content: {} numbers", scan.numbers));
        }
        let blocks = f64::from(scan.fences.div_ceil(2)) + f64::from(scan.code_symbols) / CODE_SYMBOLS_PER_UNIT;
        raw += cfg.code_block_weight * blocks.min(cap);
        let earlier = input.message_count.saturating_sub(1);
        if earlier > 0 {
            raw += cfg.conversation_weight * (earlier as f64).min(2.0 * cap);
            reasons.add(|| format!("conversation: {} messages", input.message_count));
        }
        let trivial =
            units < cfg.trivial_units && scan.steps <= 0.0 && scan.fences == 0 && subtasks == 0 && scan.questions <= 1;
        let mut bias = cfg.bias(mode);
        if trivial && bias > 0.0 {
            bias *= cfg.trivial_factor;
            reasons.add(|| "short single-step prompt".to_owned());
        }
        if bias > 0.0 {
            reasons.add(|| format!("{mode} mode leans system2: +{bias:.2}"));
        }
        raw += bias;

        let score = if raw.is_finite() { raw.max(0.0) / (1.0 + raw.max(0.0)) } else { 0.0 };
        let tier = if score >= cfg.threshold { Tier::System2 } else { Tier::System1 };
        reasons.add(|| {
            let cmp = if tier == Tier::System2 { ">=" } else { "<" };
            format!("score {score:.2} {cmp} threshold {:.2}: {tier}", cfg.threshold)
        });
        RoutingDecision { mode, tier, score, reasons: reasons.0.unwrap_or_default() }
    }
}

impl Router for ComplexityAnalyzer {
    fn route(&self, input: &RouteInput<'_>) -> RoutingDecision {
        self.evaluate(input, true)
    }

    fn score(&self, input: &RouteInput<'_>) -> f64 {
        ComplexityAnalyzer::score(self, input)
    }
}

/// Reasons, built only when the caller wants them (scoring alone skips the formatting).
struct Reasons(Option<Vec<String>>);

impl Reasons {
    fn add(&mut self, reason: impl FnOnce() -> String) {
        if let Some(reasons) = &mut self.0 {
            reasons.push(reason());
        }
    }
}

fn describe(text: &str, cue: Cue) -> String {
    match cue {
        Cue::Mode(mode, w) if w < 0.0 => format!("not a {mode} cue: `{text}`"),
        Cue::Mode(mode, _) => format!("{mode} cue: `{text}`"),
        Cue::Step(_) => format!("multi-step cue: `{text}`"),
        Cue::Constraint => format!("constraint: `{text}`"),
        Cue::SubTask => format!("sub-task cue: `{text}`"),
        Cue::MathQuestion => format!("math question: `{text}`"),
        Cue::Neutral => format!("not a cue: `{text}`"),
    }
}
