//! Where the directory source reads and the file sinks write: see
//! [`sluice_core::store`] (checkpoints resolve their paths the same way).

pub use sluice_core::store::*;
