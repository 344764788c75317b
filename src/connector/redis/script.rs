//! The Lua script (`state.lua`) that applies every state transition: its
//! invocation, the arguments each call takes, and the helpers that read its
//! replies.

use std::sync::OnceLock;

use redis::{Script, Value as RValue};

use crate::key::ClaimId;
use crate::state::{Claim, ClaimKind};

pub(super) fn script() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(include_str!("state.lua")))
}

pub(super) fn invocation(keys: &[String; 5], args: &[Vec<u8>]) -> redis::ScriptInvocation<'static> {
    let mut inv = script().prepare_invoke();
    for k in keys {
        inv.key(k.as_str());
    }
    for a in args {
        inv.arg(a.as_slice());
    }
    inv
}

pub(super) fn kind_code(kind: ClaimKind) -> &'static str {
    match kind {
        ClaimKind::Owner => "o",
        ClaimKind::Writer => "w",
        ClaimKind::Reader => "r",
        ClaimKind::Holder => "h",
    }
}

pub(super) fn kind_from(code: &str) -> Option<ClaimKind> {
    Some(match code {
        "o" => ClaimKind::Owner,
        "w" => ClaimKind::Writer,
        "r" => ClaimKind::Reader,
        "h" => ClaimKind::Holder,
        _ => return None,
    })
}

pub(super) fn text(v: &RValue) -> Option<String> {
    match v {
        RValue::BulkString(b) => String::from_utf8(b.clone()).ok(),
        RValue::SimpleString(s) => Some(s.clone()),
        RValue::Okay => Some("OK".into()),
        RValue::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

pub(super) fn int(v: Option<&RValue>) -> Option<u64> {
    v.and_then(text).and_then(|s| s.parse().ok())
}

pub(super) fn items(v: RValue) -> Vec<RValue> {
    match v {
        RValue::Array(a) => a,
        other => vec![other],
    }
}

pub(super) fn args<const N: usize>(parts: [&[u8]; N]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

pub(super) fn token() -> String {
    ClaimId::random().to_string()
}

pub(super) fn release_args(c: Claim) -> Vec<Vec<u8>> {
    args([
        b"release",
        kind_code(c.kind).as_bytes(),
        c.id.to_string().as_bytes(),
    ])
}
