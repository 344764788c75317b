//! The bytes of a remote task: the request (its arguments, and the type of
//! result the submitter expects) and the reply (the result, or why there is
//! none), each in an envelope of magic bytes and a type fingerprint.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, Result};
use crate::submit::remote::portable::Portable;

const REQUEST_MAGIC: [u8; 4] = *b"BSrq";
const REPLY_MAGIC: [u8; 4] = *b"BSrp";

/// Why a remote task has no result.
#[derive(Serialize, Deserialize)]
pub(super) enum Failure {
    /// The task panicked.
    Panicked(String),
    /// The worker could not run it (its arguments could not be rebuilt,
    /// or its result could not be sent).
    Failed(String),
}

impl Failure {
    pub(super) fn into_error(self) -> Error {
        match self {
            Failure::Panicked(message) => Error::TaskPanicked { message },
            Failure::Failed(reason) => Error::TaskCancelled {
                reason: format!("the worker could not run the task: {reason}"),
            },
        }
    }
}

/// A reply's body: the result's wire form, or why there is none.
pub(super) type Reply<R> = std::result::Result<<R as Portable>::Wire, Failure>;

#[derive(Serialize, Deserialize)]
struct Envelope<W> {
    magic: [u8; 4],
    /// Fingerprint of the wire type: both sides must agree on the types.
    fingerprint: u64,
    body: W,
}

fn encode<W: Serialize>(magic: [u8; 4], body: W) -> Result<Vec<u8>> {
    postcard::to_allocvec(&Envelope {
        magic,
        fingerprint: codec::fingerprint::<W>(),
        body,
    })
    .map_err(Error::encode)
}

fn decode<W: DeserializeOwned>(magic: [u8; 4], what: &'static str, bytes: &[u8]) -> Result<W> {
    let e: Envelope<W> = postcard::from_bytes(bytes).map_err(|e| Error::malformed(what, e))?;
    if e.magic != magic {
        return Err(Error::malformed(what, "wrong magic bytes"));
    }
    codec::check_fingerprint::<W>(e.fingerprint, format_args!("a {what} of"))?;
    Ok(e.body)
}

/// The request for a task on the arguments `args` (in their wire form)
/// whose result is an `R`.
pub(super) fn encode_request<R: Portable, W: Serialize>(args: W) -> Result<Vec<u8>> {
    encode(REQUEST_MAGIC, (codec::fingerprint::<R::Wire>(), args))
}

/// The arguments of a request for a task whose result is an `R`.
pub(super) fn decode_request<A: Portable, R: Portable>(request: &[u8]) -> Result<A::Wire> {
    let (result_fp, wire) = decode::<(u64, A::Wire)>(REQUEST_MAGIC, "task request", request)?;
    codec::check_fingerprint_as(
        codec::fingerprint::<R::Wire>(),
        std::any::type_name::<R>(),
        result_fp,
        "a request for a result of",
    )?;
    Ok(wire)
}

pub(super) fn encode_reply<R: Portable>(body: Reply<R>) -> Result<Vec<u8>> {
    encode::<Reply<R>>(REPLY_MAGIC, body)
}

pub(super) fn decode_reply<R: Portable>(reply: &[u8]) -> Result<Reply<R>> {
    decode::<Reply<R>>(REPLY_MAGIC, "task reply", reply)
}
