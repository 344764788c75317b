//! Long-form documentation. These modules contain no code.

pub mod architecture;
pub mod observability;
pub mod semantics;
