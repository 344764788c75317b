//! The Lua script (`state.lua`) that applies every state transition: how
//! it is called (`FCALL` of a function library where the server has
//! functions, Redis ≥ 7; `EVALSHA` otherwise), how it is (re)loaded, the
//! arguments each call takes, and the helpers that read its replies.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::{Script, Value as RValue};

use crate::key::ClaimId;
use crate::state::{Claim, ClaimKind};

/// The script's text, as every process of this version runs it.
const TEXT: &str = include_str!("state.lua");

fn script() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(TEXT))
}

/// The last line of [`TEXT`]: as a script, it runs the call; a library
/// registers the function it calls instead.
const CALL: &str = "return main(KEYS, ARGV)\n";

const fn ends_with(text: &str, suffix: &str) -> bool {
    let (t, x) = (text.as_bytes(), suffix.as_bytes());
    if x.len() > t.len() {
        return false;
    }
    let mut i = 0;
    while i < x.len() {
        if t[t.len() - x.len() + i] != x[i] {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    ends_with(TEXT, CALL),
    "state.lua must end with its CALL line"
);

/// The function library made of [`TEXT`], and the name of its one
/// function. The library is the script with its last line ([`CALL`])
/// replaced by the registration of `main`, so every helper is defined once,
/// when the library loads, not on every call. The name carries the text's
/// SHA-1, so processes of different versions sharing a server each call
/// their own.
fn library() -> &'static (String, String) {
    static LIBRARY: OnceLock<(String, String)> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let name = format!("borrowstore_{}", script().get_hash());
        // `TEXT` ends with `CALL`: checked when this compiles.
        let body = TEXT.strip_suffix(CALL).unwrap_or(TEXT);
        let text = format!("#!lua name={name}\n{body}redis.register_function('{name}', main)\n");
        (name, text)
    })
}

/// One request of a pipeline: a call of the script on one object's five
/// keys, or a plain command.
#[derive(Clone)]
pub(super) enum Command {
    /// The script on `keys` with `args`.
    Script {
        keys: [String; 5],
        args: Vec<Vec<u8>>,
    },
    /// Any other command (`SCAN`).
    Plain(redis::Cmd),
}

/// How this connector calls the script: by `FCALL` until the server says
/// it has no functions, then by `EVALSHA`.
#[derive(Default)]
pub(super) struct Scripting {
    no_functions: AtomicBool,
}

/// What a reply asks for before the pipeline is sent again.
enum Fix {
    LoadFunction,
    LoadScript,
    NoFunctions,
}

impl Scripting {
    /// The pipeline of `commands`, each reply kept (a server error is a
    /// [`RValue::ServerError`] in its place).
    pub(super) fn pipeline<'a>(
        &self,
        commands: impl Iterator<Item = &'a Command>,
    ) -> redis::Pipeline {
        let functions = !self.no_functions.load(Ordering::Relaxed);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for c in commands {
            match c {
                Command::Script { keys, args } => {
                    let cmd = if functions {
                        pipe.cmd("FCALL").arg(library().0.as_str())
                    } else {
                        pipe.cmd("EVALSHA").arg(script().get_hash())
                    };
                    cmd.arg(5).arg(keys.as_slice());
                    for a in args {
                        cmd.arg(a.as_slice());
                    }
                }
                Command::Plain(cmd) => {
                    pipe.add_command(cmd.clone());
                }
            }
        }
        pipe
    }

    /// What `replies` ask for, if anything: the function (or script) is
    /// not loaded (a new or restarted server), or the server has no
    /// functions (from then on `EVALSHA` is used).
    fn fix(&self, replies: &[RValue]) -> Option<Fix> {
        replies.iter().find_map(|r| match r {
            RValue::ServerError(e) => {
                let detail = e.details().unwrap_or_default();
                if e.code() == "NOSCRIPT" {
                    Some(Fix::LoadScript)
                } else if detail.starts_with("Function not found") {
                    Some(Fix::LoadFunction)
                } else if detail.contains("unknown command")
                    && detail.to_ascii_lowercase().contains("fcall")
                {
                    Some(Fix::NoFunctions)
                } else {
                    None
                }
            }
            _ => None,
        })
    }

    fn load(&self, fix: Fix) -> Option<redis::Cmd> {
        match fix {
            Fix::LoadFunction => {
                let mut c = redis::cmd("FUNCTION");
                c.arg("LOAD").arg(library().1.as_str());
                Some(c)
            }
            Fix::LoadScript => {
                let mut c = redis::cmd("SCRIPT");
                c.arg("LOAD").arg(TEXT);
                Some(c)
            }
            Fix::NoFunctions => {
                tracing::debug!("the server has no functions: calling the script by EVALSHA");
                self.no_functions.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// Sends `commands` as one pipeline with `send` (a pipeline and its
    /// number of commands to their replies, blocking) and returns one reply
    /// per command; loads the script and sends them again when the server
    /// asks for it (every script call is idempotent).
    pub(super) fn exchange(
        &self,
        commands: &[&Command],
        mut send: impl FnMut(&redis::Pipeline, usize) -> redis::RedisResult<Vec<RValue>>,
    ) -> redis::RedisResult<Vec<RValue>> {
        let mut tries = 0;
        loop {
            let replies = send(&self.pipeline(commands.iter().copied()), commands.len())?;
            match self.fix(&replies) {
                Some(fix) if tries < 2 => {
                    tries += 1;
                    if let Some(load) = self.load(fix) {
                        let mut pipe = redis::pipe();
                        pipe.ignore_errors().add_command(load);
                        let mut r = send(&pipe, 1)?;
                        loaded(r.pop().ok_or_else(no_reply)?)?;
                    }
                }
                _ => return Ok(replies),
            }
        }
    }

    /// [`exchange`](Self::exchange) on an async connection.
    pub(super) async fn exchange_async(
        &self,
        con: &mut impl redis::aio::ConnectionLike,
        commands: &[&Command],
    ) -> redis::RedisResult<Vec<RValue>> {
        let mut tries = 0;
        loop {
            let replies: Vec<RValue> = self
                .pipeline(commands.iter().copied())
                .query_async(con)
                .await?;
            match self.fix(&replies) {
                Some(fix) if tries < 2 => {
                    tries += 1;
                    // Alone, not in a pipeline: a cluster connection
                    // sends a load to every primary.
                    if let Some(load) = self.load(fix) {
                        match load.query_async::<RValue>(con).await {
                            Ok(r) => loaded(r)?,
                            Err(e) if e.to_string().contains("already exists") => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                _ => return Ok(replies),
            }
        }
    }
}

/// A load's outcome: a library another process loaded first is loaded.
fn loaded(r: RValue) -> redis::RedisResult<()> {
    match r {
        RValue::ServerError(e) if !e.details().unwrap_or_default().contains("already exists") => {
            Err(e.into())
        }
        _ => Ok(()),
    }
}

fn no_reply() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, "no reply to a pipelined command"))
}

/// The reply `v` as a result: a server error is an error.
pub(super) fn reply(v: RValue) -> redis::RedisResult<RValue> {
    match v {
        RValue::ServerError(e) => Err(e.into()),
        v => Ok(v),
    }
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
