//! Choosing among several candidate plans (`--planners N`, several `--planner-model`).
//!
//! The rule, in order: a plan that parsed beats one that did not; then the plan whose steps
//! all name a registered tool beats one with steps that name none (small models write steps
//! like "Answer." that no tool can carry out); then fewer steps; then the earlier candidate.
//! With `--plan-judge`, a model picks among the plans that parsed instead.

use super::events::PlanCandidate;

/// How many steps of `steps` name no tool of `tools`.
fn toolless_steps(steps: &[String], tools: &[String]) -> usize {
    steps
        .iter()
        .filter(|s| {
            let s = s.to_lowercase();
            !tools.iter().any(|t| s.contains(&t.to_lowercase()))
        })
        .count()
}

/// The index of the candidate the rule picks, or `None` when none parsed.
pub fn choose_by_rule(candidates: &[PlanCandidate], tools: &[String]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.rejected.is_none() && !c.steps.is_empty())
        .min_by_key(|(i, c)| (toolless_steps(&c.steps, tools), c.steps.len(), *i))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(steps: &[&str], rejected: bool) -> PlanCandidate {
        PlanCandidate {
            model: "m".into(),
            seed: 0,
            steps: steps.iter().map(|s| s.to_string()).collect(),
            raw: String::new(),
            rejected: rejected.then(|| "did not parse".into()),
        }
    }

    #[test]
    fn rule_prefers_parsed_tool_plans_then_fewer_steps() {
        let tools = vec!["calculator".to_string(), "read_file".to_string()];
        let c = vec![
            cand(&["Use calculator on 2+2.", "Answer."], false),
            cand(&["Use calculator on 2+2."], true),
            cand(&["Use read_file on a.txt.", "Use calculator on the count."], false),
            cand(&["Use calculator on 2+2.", "Check with calculator."], false),
        ];
        assert_eq!(choose_by_rule(&c, &tools), Some(2));
        assert_eq!(choose_by_rule(&c[..2], &tools), Some(0));
        assert_eq!(choose_by_rule(&c[1..2], &tools), None);
    }
}
