//! Waiting for the queued releases of several stores at once.

use crate::error::Result;
use crate::store::Store;

impl Store {
    /// [`Store::flush`] on every store in `stores`, in order: tries them
    /// all, and reports the first failure.
    pub(crate) fn flush_all(stores: &[Store]) -> Result<()> {
        let mut first = Ok(());
        for s in stores {
            if let Err(e) = s.flush()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// [`Store::flush_all`] without blocking the executor
    /// ([`Store::flush_async`] on each store in turn).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops the wait, not the releases.
    pub(crate) async fn flush_all_async(stores: &[Store]) -> Result<()> {
        let mut first = Ok(());
        for s in stores {
            if let Err(e) = s.flush_async().await
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}
