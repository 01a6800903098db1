use std::sync::Arc;
use pae_local::agent::grammars::{self, Limits};
use pae_local::agent::llm::{Llm, LlmRequest, LocalLlm, Purpose};
use pae_local::agent::prompt::PromptContext;
use pae_local::agent::templates::Templates;
use pae_local::agent::tools::ToolSpec;
use pae_local::decode::{Engine, SamplingParams};
use pae_local::model::{LoadOptions, Model};

fn main() {
    pae_local::model::threads::configure(None);
    let path = std::env::args().nth(1).unwrap_or("models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    let m = Arc::new(Model::load(path.as_ref(), LoadOptions::default()).unwrap());
    let llm = LocalLlm::new(Arc::new(Engine::new(m)));
    let t = Templates::builtin().unwrap();
    let tools = vec![
        ToolSpec::new("calculator", "Computes an arithmetic expression exactly.", serde_json::json!({"type":"object","properties":{"expression":{"type":"string","maxLength":100}},"required":["expression"],"additionalProperties":false}), serde_json::json!({"expression":"2 * (3 + 4)"})),
        ToolSpec::new("read_file", "Reads a text file of the workspace.", serde_json::json!({"type":"object","properties":{"path":{"type":"string","maxLength":100}},"required":["path"],"additionalProperties":false}), serde_json::json!({"path":"notes.txt"})),
    ];
    let ctx = PromptContext { objective: "What is 17 * 23 + 4?".into(), tools: tools.clone(), max_steps: 4, step: "Use calculator on 17 * 23 + 4.".into(), step_number: 1, ..Default::default() };
    let limits = Limits::default();
    for (name, g, tmpl) in [("plan", grammars::plan(&t, &limits).unwrap(), "planner.jinja"), ("exec", grammars::executor(&t, &tools, &limits, &[]).unwrap(), "executor.jinja")] {
        for seed in 0..3 {
            let req = LlmRequest { purpose: Purpose::Plan, messages: ctx.messages(&t, tmpl).unwrap(), assistant_prefix: String::new(), grammar: Some(g.clone()), sampling: SamplingParams { seed, temperature: if seed == 0 { 0.0 } else { 1.0 }, ..Default::default() }, max_tokens: 200 };
            let r = llm.complete(&req, &mut |_| {}).unwrap();
            println!("--- {name} seed {seed}: {:?} {:?}\n{}", r.stats.stop_reason, (r.stats.generated_tokens, r.stats.forced_tokens, r.stats.decode_secs), r.text);
        }
    }
}
