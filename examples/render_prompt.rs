//! Prints the planner and executor prompts for an objective (to see what the model sees).
use std::sync::Arc;
use pae_local::agent::prompt::PromptContext;
use pae_local::agent::templates::Templates;
use pae_local::agent::tools::*;
fn main() {
    let objective = std::env::args().nth(1).unwrap_or("Add 345 and 655.".into());
    let ws = Arc::new(Workspace::new(std::path::Path::new("/tmp/ws")).unwrap());
    let mut r = Registry::new(std::time::Duration::from_secs(5));
    r.add(Arc::new(Calculator::default())).unwrap();
    r.add(Arc::new(ListDir::new(ws.clone()))).unwrap();
    r.add(Arc::new(ReadFile::new(ws.clone()))).unwrap();
    r.add(Arc::new(SearchFiles::new(ws.clone()))).unwrap();
    r.add(Arc::new(SqlQuery::new(std::path::Path::new("/tmp/ws/shop.db"), false).unwrap())).unwrap();
    let t = Templates::builtin().unwrap();
    let ctx = PromptContext { objective: objective.clone(), tools: pae_local::agent::relevance::rank(&objective, &r.specs()), max_steps: 4, step: "Use calculator to add 345 and 655.".into(), step_number: 1, ..Default::default() };
    println!("=== planner\n{}", t.render("planner.jinja", &ctx).unwrap());
    println!("=== executor\n{}", t.render("executor.jinja", &ctx).unwrap());
}
