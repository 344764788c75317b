//! Loom models for borrowstore live in `tests/`.
