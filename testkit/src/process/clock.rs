//! A child process whose clock is set off from the real one, through
//! libfaketime (`LD_PRELOAD`): the environment to give
//! [`ChildProc::spawn`](super::ChildProc::spawn).
//!
//! libfaketime comes with the `faketime` package (`apt-get install -y
//! faketime`; `./scripts/test.sh` installs it). Where it is missing,
//! [`skewed_clock_env`] says so in its error: a test that needs it fails
//! with that message, it is never silently skipped.
//!
//! ```no_run
//! use borrowstore_testkit::process::clock::skewed_clock_env;
//! let env = skewed_clock_env(-5).expect("libfaketime");
//! assert!(env.iter().any(|(k, _)| k == "FAKETIME"));
//! ```

use std::path::PathBuf;

/// Names a libfaketime library to use instead of the usual places.
pub const LIBFAKETIME_VAR: &str = "BORROWSTORE_LIBFAKETIME";

/// Where the `faketime` packages of common distributions put the library.
const PLACES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The libfaketime library, or why there is none.
pub fn libfaketime() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var(LIBFAKETIME_VAR) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{LIBFAKETIME_VAR}={} is not a file", p.display()))
        };
    }
    PLACES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "libfaketime is not installed (looked in {PLACES:?}; set {LIBFAKETIME_VAR} \
                 to its path, or run `apt-get install -y faketime`)"
            )
        })
}

/// The environment that sets a child's wall clock `offset_s` seconds off
/// (negative: behind). Its monotonic clock (`Instant`) is left alone, so
/// its timeouts still work.
pub fn skewed_clock_env(offset_s: i64) -> Result<Vec<(String, String)>, String> {
    let lib = libfaketime()?;
    Ok(vec![
        ("LD_PRELOAD".to_owned(), lib.display().to_string()),
        ("FAKETIME".to_owned(), format!("{offset_s:+}s")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
    ])
}
