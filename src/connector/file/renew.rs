//! The file store's leases: renewing this process's claims, and the reap
//! pass that releases expired claims and sweeps what dead writers left.

use std::fs;
use std::time::Duration;

use super::files::Inner;
use crate::connector::lease::{Held, Renew};
use crate::error::Error;
use crate::key::Key;
use crate::state::Claim;

impl Renew for Inner {
    fn renew(&self, key: &Key, claims: &[Claim]) -> Vec<Claim> {
        let deadline = self.deadline();
        let r = self.with_ledger(key, |l| {
            Ok(claims
                .iter()
                .filter(|c| !l.renew(**c, deadline))
                .copied()
                .collect::<Vec<_>>())
        });
        match r {
            Ok(lost) => lost,
            Err(Error::KeyNotFound { .. }) => claims.to_vec(),
            Err(e) => {
                tracing::warn!(%key, error = %e, "lease renewal failed; will retry");
                Vec::new()
            }
        }
    }

    fn reap(&self) {
        let Ok(dir) = fs::read_dir(self.root.join("objects")) else {
            return;
        };
        let mut ledgers = std::collections::BTreeSet::new();
        let mut blobs: Vec<(Key, u64)> = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(key) = name
                .strip_suffix(".ledger")
                .and_then(|k| k.parse::<Key>().ok())
            {
                ledgers.insert(key);
            } else if let Some((key, version)) = name.strip_suffix(".blob").and_then(|kv| {
                let (k, v) = kv.split_once('.')?;
                Some((k.parse::<Key>().ok()?, v.parse::<u64>().ok()?))
            }) {
                blobs.push((key, version));
            }
        }
        // Release expired claims (and evict what that frees).
        for key in &ledgers {
            let _ = self.with_ledger(key, |_| Ok(()));
        }
        // Value files that no ledger names: left by a process killed between
        // writing a value and writing (or after writing) its ledger. Checked
        // under the shard lock, which every writer holds from renaming a
        // value into place until its ledger is written.
        for (key, version) in blobs {
            let Ok(_guard) = self.lock(&key) else {
                continue;
            };
            let current = self.read_ledger(&key).ok().flatten().map(|l| l.version);
            if current != Some(version) {
                let _ = fs::remove_file(self.blob_path(&key, version));
            }
        }
        // Temporary files of writers that died mid-write.
        let stale = std::time::SystemTime::now() - Duration::from_secs(3600).max(self.lease * 10);
        if let Ok(tmp) = fs::read_dir(self.root.join("tmp")) {
            for entry in tmp.flatten() {
                if entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < stale)
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    fn held(&self) -> &Held {
        &self.held
    }
}
