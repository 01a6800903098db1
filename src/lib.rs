//! pae-local: an offline plan-and-execute agent runtime.
pub mod decode;
pub mod model;
