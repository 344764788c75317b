//! Misuse that ProxyStore only catches at run time fails to compile here.
//!
//! Each file in `tests/compile_fail/` is one misuse; its `.stderr` is the
//! expected compiler output, checked so that it fails for the intended
//! reason. Regenerate with `TRYBUILD=overwrite cargo test --test compile_fail`
//! after a compiler upgrade, and read the diff.

#[test]
fn misuse_fails_to_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
