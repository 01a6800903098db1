//! Grammars as a user's `--templates` folder may write them: arbitrary Lark text compiled
//! against the default model's vocabulary, then a few masks and commits driven by the input.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pae_local::decode::constraint::{Grammar, GrammarFactory};

fn factory() -> &'static GrammarFactory {
    static F: OnceLock<GrammarFactory> = OnceLock::new();
    F.get_or_init(|| {
        let tok = common::tokenizer();
        let width = tok.vocab_size();
        let end: Vec<u32> = tok.eos().into_iter().collect();
        GrammarFactory::new(tok, &end, width).expect("a grammar factory")
    })
}

fuzz_target!(|data: &[u8]| {
    // The first bytes pick tokens to commit; the rest is the grammar.
    let split = data.len().min(8);
    let (picks, text) = data.split_at(split);
    let text = String::from_utf8_lossy(text);
    let Ok(mut c) = factory().compile(&Grammar::Lark(text.into_owned())) else { return };
    let width = factory_width();
    for &p in picks {
        if c.is_stopped() {
            break;
        }
        let _ = c.forced_tokens();
        let mut logits = vec![0f32; width];
        if c.apply_mask(&mut logits).is_err() {
            break;
        }
        let allowed: Vec<u32> = (0..width as u32).filter(|&i| logits[i as usize].is_finite()).collect();
        let Some(&tok) = allowed.get(p as usize % allowed.len().max(1)) else { break };
        if c.commit(tok).is_err() {
            break;
        }
        let _ = c.is_accepting();
    }
});

fn factory_width() -> usize {
    common::tokenizer().vocab_size()
}
