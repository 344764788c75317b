//! Reading what the Redis store records for inspection: the reply of the
//! script's `inspect` (the state hash's claims, the readers, holders,
//! tickets and notes hashes, and the server's clock), turned into an
//! [`Inspect`]. The notes' format is documented at the top of `state.lua`.

use std::collections::{HashMap, HashSet};

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

fn splitn4(s: &str) -> [&str; 4] {
    let mut it = s.splitn(4, '|');
    [(); 4].map(|()| it.next().unwrap_or(""))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The inspection reply `{'ok', v, o, od, w, wd, had, R, H, T, M, now}`.
pub(super) fn inspect_reply(parts: &[RValue]) -> Option<Inspect> {
    let t = |i: usize| parts.get(i).and_then(text).unwrap_or_default();
    let version = t(1).parse().ok()?;
    let (owner, owner_d, writer, writer_d, had) = (t(2), t(3), t(4), t(5), t(6));
    let readers = pairs(parts.get(7));
    let holders = pairs(parts.get(8));
    let in_flight: HashSet<String> = pairs(parts.get(9))
        .into_iter()
        .filter(|(_, v)| !v.starts_with("R:"))
        .filter_map(|(_, v)| v.split_once(':').map(|(_, id)| id.to_owned()))
        .collect();
    let notes: HashMap<String, String> = pairs(parts.get(10)).into_iter().collect();
    let state = State::from_parts(
        u32::try_from(readers.len()).unwrap_or(u32::MAX),
        !writer.is_empty(),
        !owner.is_empty(),
        u32::try_from(holders.len()).unwrap_or(u32::MAX),
        had == "1",
        false,
    );
    let object = notes.get("obj").map_or_else(ObjectMeta::default, |o| {
        let [ty, size, created, label] = splitn4(o);
        ObjectMeta {
            type_name: non_empty(ty),
            size: size.parse().ok(),
            created_ms: created.parse().ok(),
            label: non_empty(label),
        }
    });
    let mut claims = Vec::new();
    let mut add = |kind: ClaimKind, id: &str, deadline: &str| {
        let lease = deadline.parse::<u64>().ok().filter(|d| *d > 0);
        let role = if in_flight.contains(id) {
            ClaimRole::Ticket
        } else {
            kind.into()
        };
        let [pid, host, since, label] = splitn4(notes.get(id).map_or("", String::as_str));
        claims.push(ClaimInfo::new(
            role,
            pid.parse().unwrap_or(0),
            host.to_owned(),
            non_empty(label),
            since.parse().unwrap_or(0),
            lease,
        ));
    };
    if !owner.is_empty() {
        add(ClaimKind::Owner, &owner, &owner_d);
    }
    if !writer.is_empty() {
        add(ClaimKind::Writer, &writer, &writer_d);
    }
    for (id, d) in &holders {
        add(ClaimKind::Holder, id, d);
    }
    for (id, d) in &readers {
        add(ClaimKind::Reader, id, d);
    }
    Some(Inspect {
        state,
        version,
        object,
        claims,
    })
}
