//! pae-local: an offline plan-and-execute agent runtime.
pub mod agent;
pub mod decode;
pub mod eval;
pub mod model;
