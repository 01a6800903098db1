//! Integration tests: one binary, one module per area.

mod cli;
mod common;
mod fake_gguf;
mod fidelity;
mod runtime;
mod stock_llama;
