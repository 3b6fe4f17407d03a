//! The simulator playing the model for the platform's research planner: a request whose system
//! prompt contains [`PLAN_MARKER`] gets a JSON array of sub-questions derived from the user's
//! question, as many as the prompt's "at most N" asks (3 when it names no number).

/// The phrase the research planner's system prompt carries (shared/core functions/research.rs).
pub(crate) const PLAN_MARKER: &str = "Reply with a JSON array of sub-questions";

const ANGLES: [&str; 6] = [
    "background and definitions",
    "recent developments",
    "evidence and numbers",
    "risks and open problems",
    "alternatives and comparisons",
    "outlook",
];

/// The planner's answer when `inputs` hold a planning prompt.
pub(crate) fn plan(inputs: &[String], question: &str) -> Option<String> {
    let prompt = inputs.iter().find(|text| text.contains(PLAN_MARKER))?;
    let wanted = prompt
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(3)
        .clamp(1, ANGLES.len());
    let question = question.trim().trim_end_matches('?');
    let subs: Vec<String> = ANGLES.iter().take(wanted).map(|angle| format!("{question}: {angle}?")).collect();
    serde_json::to_string(&subs).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_planning_prompt_gets_as_many_sub_questions_as_it_asks_for() {
        let inputs = vec![format!("Plan. {PLAN_MARKER}, at most 2 of them."), "Why is the sky blue?".to_string()];
        let subs: Vec<String> = serde_json::from_str(&plan(&inputs, "Why is the sky blue?").unwrap()).unwrap();
        assert_eq!(
            subs,
            ["Why is the sky blue: background and definitions?", "Why is the sky blue: recent developments?"]
        );
        assert_eq!(plan(&["just chat".to_string()], "hi"), None);
    }
}
