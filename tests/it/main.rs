//! Integration tests: one binary, one module per area.

// Tests print what they measure.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod agent_e2e;
mod agent_flow;
mod cli;
mod common;
mod console;
mod fake_gguf;
mod fidelity;
mod fixture;
mod grammar;
mod hardening;
mod mcp;
mod runtime;
mod session;
mod stock_llama;
mod tools_file;
