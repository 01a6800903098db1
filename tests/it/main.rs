//! Integration tests: one binary, one module per area.

mod common;
mod fidelity;
mod stock_llama;
