// A struct of the user's own is not a task argument: `submit` must be able
// to find the borrows in its arguments. Wrap plain values in `Plain(..)`,
// capture them in the closure, or implement `TaskArgs` for the struct.
use borrowstore::submit::submit;

struct Settings {
    scale: u64,
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let h = submit(rt.handle(), Settings { scale: 2 }, |s| async move { s.scale });
    let _ = rt.block_on(h);
}
