//! What a connector stores: encoded bytes, or a value kept undecoded in
//! this process.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::{HasVtable, Storable, TypeVtable};
use crate::error::Result;

/// A stored value.
///
/// Connectors that keep data in this process (the memory connector) store
/// [`Value::Local`] as it is — no serialization, and every reader shares the
/// one `Arc`. Connectors that move data elsewhere call [`Value::into_bytes`].
#[derive(Clone)]
pub enum Value {
    /// An encoded blob ([`codec`](crate::codec) header + postcard).
    Bytes(Bytes),
    /// A value in this process's memory.
    Local(LocalValue),
}

impl Value {
    /// The value as an encoded blob, encoding a local value.
    pub fn into_bytes(self) -> Result<Bytes> {
        match self {
            Value::Bytes(b) => Ok(b),
            Value::Local(l) => l.encode().map(Bytes::from),
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Value::Local(l) => write!(f, "Local({})", l.type_name()),
        }
    }
}

/// A value kept undecoded in this process, with what is needed to encode it.
#[derive(Clone)]
pub struct LocalValue {
    value: Arc<dyn Any + Send + Sync>,
    vtable: &'static TypeVtable,
}

impl LocalValue {
    /// Wraps a shared value.
    pub fn new<T: Storable>(value: Arc<T>) -> Self {
        LocalValue {
            value,
            vtable: T::VTABLE,
        }
    }

    /// The value, if it is a `T`.
    pub fn downcast<T: Storable>(&self) -> Option<Arc<T>> {
        self.value.clone().downcast::<T>().ok()
    }

    /// The name of the value's type.
    pub fn type_name(&self) -> &'static str {
        (self.vtable.type_name)()
    }

    /// The size of the value itself in memory (not of what it points to).
    ///
    /// ```
    /// use borrowstore::connector::LocalValue;
    /// assert_eq!(LocalValue::new(std::sync::Arc::new([0u8; 12])).size(), 12);
    /// ```
    pub fn size(&self) -> usize {
        std::mem::size_of_val(&*self.value)
    }

    /// Encodes the value as a blob.
    pub fn encode(&self) -> Result<Vec<u8>> {
        (self.vtable.encode)(&*self.value)
    }
}

/// A value with its version. Versions start at 1 and grow by one with every
/// publish, so a reader that knows the version it holds can skip the value.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The value.
    pub value: Value,
    /// Its version.
    pub version: u64,
}

/// The answer to a version-checked read.
#[derive(Clone, Debug)]
pub enum Fetch {
    /// The store has the version the caller already holds; no value moved.
    Unchanged,
    /// The store has another version (or the caller held none).
    Changed(Stored),
    /// The object does not exist.
    Missing,
}
