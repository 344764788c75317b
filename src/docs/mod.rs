//! Long-form documentation. These modules contain no code.

pub mod architecture;
pub mod semantics;
