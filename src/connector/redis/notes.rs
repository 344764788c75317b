//! Reading what the Redis store records for inspection: the reply of the
//! script's `peek` (the state hash's claims, the readers, holders, tickets
//! and notes hashes, the server's clock, and the process table where it can
//! be read), turned into an [`Inspect`]. A claim's lease deadline is its
//! ticket's, or its process's record deadline. The notes' format is
//! documented at the top of `state.lua`.

use std::collections::HashMap;

use redis::Value as RValue;

use super::script::{items, text};
use crate::connector::{ClaimInfo, ClaimRole, Inspect, ObjectMeta};
use crate::state::{ClaimKind, State};

/// A hash's `HGETALL` reply as pairs.
fn pairs(v: Option<&RValue>) -> Vec<(String, String)> {
    let all: Vec<String> = v
        .cloned()
        .map(items)
        .unwrap_or_default()
        .iter()
        .filter_map(text)
        .collect();
    all.chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

fn split<const N: usize>(s: &str) -> [&str; N] {
    let mut it = s.splitn(N, '|');
    [(); N].map(|()| it.next().unwrap_or(""))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// When the claim whose record is `rec` runs out: a ticket's deadline
/// (`@<deadline>`), or its process's record deadline in the process table
/// (`<deadline>:<lease>…`, or `dead:<time>` once judged dead); `None` if the
/// process has no record there (it has not renewed yet) or the table could
/// not be read. And whether the claim is in a ticket.
fn lease_of(rec: &str, procs: &HashMap<String, String>) -> (Option<u64>, bool) {
    let holder = rec.split(';').next().unwrap_or("");
    if let Some(d) = holder.strip_prefix('@') {
        return (d.parse().ok(), true);
    }
    let lease = procs.get(holder).and_then(|r| {
        r.strip_prefix("dead:")
            .unwrap_or(r)
            .split(':')
            .next()
            .and_then(|d| d.parse().ok())
    });
    (lease, false)
}

/// The inspection reply `{'ok', v, o, od, w, wd, had, R, H, T, M, now, procs}`
/// (`peek` in `state.lua`).
pub(super) fn inspect_reply(parts: &[RValue]) -> Option<Inspect> {
    let t = |i: usize| parts.get(i).and_then(text).unwrap_or_default();
    let version = t(1).parse().ok()?;
    let (owner, owner_rec, writer, writer_rec, had) = (t(2), t(3), t(4), t(5), t(6));
    let readers = pairs(parts.get(7));
    let holders = pairs(parts.get(8));
    let notes: HashMap<String, String> = pairs(parts.get(10)).into_iter().collect();
    let procs: HashMap<String, String> = pairs(parts.get(12)).into_iter().collect();
    let state = State::from_parts(
        u32::try_from(readers.len()).unwrap_or(u32::MAX),
        !writer.is_empty(),
        !owner.is_empty(),
        u32::try_from(holders.len()).unwrap_or(u32::MAX),
        had == "1",
        false,
    );
    let object = notes.get("obj").map_or_else(ObjectMeta::default, |o| {
        let [ty, size, created, label] = split::<4>(o);
        ObjectMeta {
            type_name: non_empty(ty),
            size: size.parse().ok(),
            created_ms: created.parse().ok(),
            label: non_empty(label),
        }
    });
    let mut claims = Vec::new();
    let mut add = |kind: ClaimKind, id: &str, rec: &str| {
        let (lease, in_ticket) = lease_of(rec, &procs);
        let role = if in_ticket {
            ClaimRole::Ticket
        } else {
            kind.into()
        };
        let [pid, host, since, lease_ms, label] =
            split::<5>(notes.get(id).map_or("", String::as_str));
        let since: u64 = since.parse().unwrap_or(0);
        // A process that has not renewed yet: a lease from when it took the
        // claim, as the reaper would grant it.
        let lease = lease.or_else(|| lease_ms.parse::<u64>().ok().map(|l| since + l));
        claims.push(ClaimInfo::new(
            role,
            pid.parse().unwrap_or(0),
            host.to_owned(),
            non_empty(label),
            since,
            lease,
        ));
    };
    if !owner.is_empty() {
        add(ClaimKind::Owner, &owner, &owner_rec);
    }
    if !writer.is_empty() {
        add(ClaimKind::Writer, &writer, &writer_rec);
    }
    for (id, rec) in &holders {
        add(ClaimKind::Holder, id, rec);
    }
    for (id, rec) in &readers {
        add(ClaimKind::Reader, id, rec);
    }
    Some(Inspect {
        state,
        version,
        object,
        claims,
    })
}
