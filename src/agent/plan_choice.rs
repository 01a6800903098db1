//! Which plan a run starts from: candidate plans sampled from the planner models
//! (`--plan-samples N`, several `--planner-model`), one chosen among them, and the supervisor's
//! review of the plan about to run.
//!
//! The rule, in order: a plan that parsed beats one that did not; then the plan whose steps
//! all name a registered tool beats one with steps that name none (small models write steps
//! like "Answer." that no tool can carry out); then fewer steps; then the earlier candidate.
//! With `--plan-judge`, a model picks among the plans that parsed instead.
//!
//! The loop in [`runner`](super::runner) only asks for a plan and adopts it; sampling,
//! choosing and review live here so that the rule, the judge and the model calls that feed
//! them read together.

use std::sync::Arc;

use crate::decode::SamplingParams;

use super::calls::{Caller, Halt};
use super::events::{Event, PlanCandidate, PlanSource};
use super::grammars;
use super::llm::{Llm, LlmRequest, Purpose};
use super::planner::Planner;
use super::prompt::PromptContext;
use super::run_config::AgentConfig;
use super::supervisor::{PlanReview, Supervisor};
use super::templates::Templates;
use super::Error;

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

/// Samples `config.plan_samples` plans from each of `planners` and returns the steps of the one
/// chosen: by the judge (the first planner) when `plan_judge` is set and more than one parsed,
/// else by the rule. With several candidates, a `Plan` event lists them all and the choice.
pub(crate) async fn sample_and_choose(
    caller: &Caller,
    planners: &[Arc<dyn Llm>],
    templates: &Templates,
    ctx: &PromptContext,
    config: &AgentConfig,
) -> Result<Vec<String>, Halt> {
    let c = config;
    let planner = Planner::new(c.planner_kind, c.limits);
    let mut candidates = Vec::new();
    for llm in planners {
        for k in 0..c.plan_samples {
            // Greedy sampling would give N identical plans: later samples explore.
            let sampling = c.planner_sampling.nth_sample(k, 0.8);
            let req = planner.request(templates, ctx, &sampling)?;
            let resp = caller.call(llm, "planner", req).await?;
            let (steps, rejected) = match planner.parse(&resp.text) {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            candidates.push(PlanCandidate {
                model: llm.name().to_string(),
                seed: sampling.seed,
                steps,
                raw: resp.text,
                rejected,
            });
        }
    }
    let tools: Vec<String> = ctx.tools.iter().map(|t| t.name.clone()).collect();
    let valid: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i].rejected.is_none()).collect();
    let chosen = if c.plan_judge && valid.len() > 1 {
        Some(judge(caller, &planners[0], templates, ctx, &candidates, &valid).await?)
    } else {
        choose_by_rule(&candidates, &tools)
    };
    let Some(chosen) = chosen else {
        let why = candidates.iter().filter_map(|c| c.rejected.clone()).collect::<Vec<_>>().join("; ");
        return Err(Halt::Error(Error::Parse(format!("no usable plan: {why}"))));
    };
    let steps = candidates[chosen].steps.clone();
    if candidates.len() > 1 {
        caller.emit(Event::Plan {
            steps: steps.clone(),
            source: PlanSource::Planner,
            candidates: candidates.clone(),
            chosen: Some(chosen),
        });
    }
    Ok(steps)
}

/// The index (into `candidates`) of the plan `llm` judges best among those of `valid`,
/// asked greedily under a grammar that allows only `Best plan: N`.
async fn judge(
    caller: &Caller,
    llm: &Arc<dyn Llm>,
    templates: &Templates,
    ctx: &PromptContext,
    candidates: &[PlanCandidate],
    valid: &[usize],
) -> Result<usize, Halt> {
    let plans: Vec<Vec<String>> = valid.iter().map(|&i| candidates[i].steps.clone()).collect();
    let mut ctx = ctx.clone();
    ctx.candidates = plans.clone();
    let req = LlmRequest {
        purpose: Purpose::Judge,
        messages: ctx.messages(templates, "judge.jinja")?,
        assistant_prefix: String::new(),
        grammar: Some(grammars::judge(templates, &plans)?),
        sampling: SamplingParams::greedy(),
        max_tokens: 16,
    };
    let resp = caller.call(llm, "planner", req).await?;
    let n: usize = resp
        .text
        .trim()
        .strip_prefix("Best plan: ")
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| (1..=valid.len()).contains(n))
        .ok_or_else(|| Halt::Error(Error::Parse(format!("the judge wrote {:?}", resp.text))))?;
    Ok(valid[n - 1])
}

/// Shows `steps` to the supervisor (off the async threads: a person may be typing) and
/// returns the plan to run with where it came from, an edited plan coming from the human;
/// `None` when the supervisor rejects it. Each verdict is reported as a `Human` event.
pub(crate) async fn review(
    caller: &Caller,
    supervisor: Arc<dyn Supervisor>,
    steps: Vec<String>,
    source: PlanSource,
) -> Option<(Vec<String>, PlanSource)> {
    let plan = steps.clone();
    let verdict = tokio::task::spawn_blocking(move || supervisor.review_plan(&plan))
        .await
        .unwrap_or(PlanReview::Reject);
    match verdict {
        PlanReview::Accept => {
            caller.emit(Event::Human {
                kind: "approve".into(),
                text: String::new(),
            });
            Some((steps, source))
        }
        PlanReview::Edit(edited) => {
            caller.emit(Event::Human {
                kind: "edit".into(),
                text: edited.join("\n"),
            });
            Some((edited, PlanSource::Human))
        }
        PlanReview::Reject => {
            caller.emit(Event::Human {
                kind: "reject".into(),
                text: String::new(),
            });
            None
        }
    }
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
