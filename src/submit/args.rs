//! [`TaskArgs`]: what a task's arguments are made of, and the borrows among
//! them.

use crate::codec::Storable;
use crate::key::Key;
use crate::ownership::{Borrowed, OwnedProxy, RefMutProxy, RefProxy, TaskClaim};
use crate::proxy::Proxy;
use crate::state::Claim;
use crate::store::Store;
use crate::submit::few::Few;
use crate::submit::lists;

/// A task's arguments: handles, containers of handles, and plain values.
///
/// [`submit`](crate::submit::submit) and
/// [`submit_blocking`](crate::submit::submit_blocking) walk the arguments
/// with [`TaskArgs::visit`] before the task starts, and tie every borrow
/// they find to the task: the borrows end store-side when the task ends, in
/// whatever way it ends.
///
/// Implemented for [`RefProxy`], [`RefMutProxy`], [`OwnedProxy`], [`Proxy`],
/// [`Plain`] (any other value), `()`, tuples of up to 12 arguments,
/// `Vec`, `Option`, `Box` and arrays of arguments. For a struct of your own,
/// visit each field:
///
/// ```
/// use borrowstore::submit::{ArgsVisitor, Plain, TaskArgs};
/// use borrowstore::RefProxy;
///
/// struct Job {
///     input: RefProxy<Vec<u64>>,
///     scale: Plain<u64>,
/// }
///
/// impl TaskArgs for Job {
///     fn visit(&mut self, visitor: &mut ArgsVisitor) {
///         self.input.visit(visitor);
///         self.scale.visit(visitor);
///     }
/// }
/// ```
///
/// A borrow the visit does not reach is not tied to the task: it ends when
/// its handle is dropped, as anywhere else.
///
/// Other types are not task arguments, and `submit` says so at compile
/// time: a plain value goes in [`Plain`] (or is captured by the task's
/// closure instead); a borrow behind an `Arc` or in a map cannot be tied
/// to the task (each task gets its own, with
/// [`RefProxy::reborrow`](crate::RefProxy::reborrow); pass several in a
/// `Vec`, a tuple or an array).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a task argument",
    label = "not a task argument",
    note = "task arguments are `RefProxy`, `RefMutProxy`, `OwnedProxy`, `Proxy`, `Plain(value)`, `()`, `String` and the primitive types, and tuples, `Vec`, `Option`, `Box` and arrays of them",
    note = "wrap a plain value in `Plain(..)`, or capture it in the task's closure instead",
    note = "a borrow behind an `Arc` or in a map cannot be tied to the task: give each task its own (`RefProxy::reborrow`), several in a `Vec` or a tuple",
    note = "for a struct of your own that holds borrows, implement `TaskArgs` by visiting each field"
)]
pub trait TaskArgs: Send + 'static {
    /// Reports every borrow in `self`, and the store of every handle, to
    /// `visitor`.
    ///
    /// ```
    /// use borrowstore::{Store, borrow};
    /// use borrowstore::submit::{Plain, task_borrows};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-task-args-visit");
    /// let (a, b) = (store.owned_proxy(1u8)?, store.owned_proxy(2u8)?);
    /// let mut args = vec![(borrow(&a)?, Plain("x")), (borrow(&b)?, Plain("y"))];
    /// assert_eq!(task_borrows(&mut args).len(), 2);       // `visit` found both
    /// # Ok(()) }
    /// ```
    fn visit(&mut self, visitor: &mut ArgsVisitor);
}

/// One borrow found in a task's arguments.
#[derive(Clone, Debug)]
pub struct BorrowInfo {
    /// The object's store.
    pub store: Store,
    /// The object's key.
    pub key: Key,
    /// The claim the borrow holds (a reader or a writer).
    pub claim: Claim,
}

enum Mode {
    /// Tie borrows to a task.
    Enlist(Few<TaskClaim>),
    /// Only report them.
    Inspect(Vec<BorrowInfo>),
}

/// Collects the borrows and stores of a task's arguments; see
/// [`TaskArgs::visit`].
pub struct ArgsVisitor {
    mode: Mode,
    stores: Few<Store>,
}

impl std::fmt::Debug for ArgsVisitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgsVisitor")
            .field("borrows", &self.borrows())
            .field("stores", &self.stores())
            .finish()
    }
}

impl ArgsVisitor {
    pub(crate) fn enlisting() -> Self {
        ArgsVisitor {
            mode: Mode::Enlist(Few::Zero),
            stores: Few::Zero,
        }
    }

    /// The borrows found so far.
    ///
    /// ```
    /// use borrowstore::{RefProxy, Store, borrow};
    /// use borrowstore::submit::{ArgsVisitor, TaskArgs, task_borrows};
    ///
    /// struct Pair(RefProxy<u8>, RefProxy<u8>);
    /// impl TaskArgs for Pair {
    ///     fn visit(&mut self, visitor: &mut ArgsVisitor) {
    ///         self.0.visit(visitor);
    ///         assert_eq!(visitor.borrows().len(), 1);
    ///         self.1.visit(visitor);
    ///     }
    /// }
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-args-visitor-borrows");
    /// let owner = store.owned_proxy(1u8)?;
    /// let mut pair = Pair(borrow(&owner)?, borrow(&owner)?);
    /// let found = task_borrows(&mut pair);
    /// assert_eq!(found.len(), 2);
    /// assert_eq!(found[0].key, *borrowstore::OwnedProxy::key(&owner));
    /// # Ok(()) }
    /// ```
    pub fn borrows(&self) -> Vec<BorrowInfo> {
        match &self.mode {
            Mode::Inspect(b) => b.clone(),
            Mode::Enlist(claims) => claims
                .as_slice()
                .iter()
                .map(|c| BorrowInfo {
                    store: c.store().clone(),
                    key: *c.key(),
                    claim: c.claim(),
                })
                .collect(),
        }
    }

    /// The stores of every handle found so far, each once. The task's
    /// handle waits for these stores' queued releases
    /// ([`Store::flush_async`]) before it resolves.
    ///
    /// ```
    /// use borrowstore::{RefProxy, Store, borrow};
    /// use borrowstore::submit::{ArgsVisitor, TaskArgs, task_borrows};
    ///
    /// struct Two(RefProxy<u8>, RefProxy<u8>);
    /// impl TaskArgs for Two {
    ///     fn visit(&mut self, visitor: &mut ArgsVisitor) {
    ///         self.0.visit(visitor);
    ///         self.1.visit(visitor);
    ///         assert_eq!(visitor.stores().len(), 1);         // one store, listed once
    ///     }
    /// }
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-args-visitor-stores");
    /// let owner = store.owned_proxy(1u8)?;
    /// task_borrows(&mut Two(borrow(&owner)?, borrow(&owner)?));
    /// # Ok(()) }
    /// ```
    pub fn stores(&self) -> &[Store] {
        self.stores.as_slice()
    }

    /// Adds a store whose queued releases the task's handle waits for: for
    /// an argument that releases claims of a store without holding a
    /// borrow the visit can see.
    ///
    /// ```
    /// use borrowstore::Store;
    /// use borrowstore::submit::{ArgsVisitor, TaskArgs, task_borrows};
    ///
    /// struct Cleanup(Store);
    /// impl TaskArgs for Cleanup {
    ///     fn visit(&mut self, visitor: &mut ArgsVisitor) {
    ///         visitor.store(&self.0);
    ///         assert!(visitor.stores()[0].same_store(&self.0));
    ///     }
    /// }
    /// assert!(task_borrows(&mut Cleanup(Store::memory("doc-args-visitor-store"))).is_empty());
    /// ```
    pub fn store(&mut self, store: &Store) {
        self.store_of(store.clone());
    }

    /// A borrow: tied to the task, or only reported.
    fn borrow<B: Borrowed>(&mut self, b: &mut B) {
        let core = b.core_mut();
        match &mut self.mode {
            Mode::Enlist(claims) => {
                // `None`: a task already ended it; nobody's to end again.
                let Some(c) = core.enlist() else {
                    return;
                };
                claims.push(c);
            }
            Mode::Inspect(found) => found.push(BorrowInfo {
                store: core.store().clone(),
                key: *core.key(),
                claim: core.claim(),
            }),
        }
        self.store_of(core.store().clone());
    }

    fn store_of(&mut self, store: Store) {
        if !self.stores.as_slice().iter().any(|s| s.same_store(&store)) {
            self.stores.push(store);
        }
    }

    pub(crate) fn into_parts(self) -> (Few<TaskClaim>, Few<Store>) {
        match self.mode {
            Mode::Enlist(claims) => (claims, self.stores),
            Mode::Inspect(_) => (Few::Zero, self.stores),
        }
    }
}

/// The borrows in `args`, without tying them to any task.
///
/// ```
/// use borrowstore::{Store, borrow};
/// use borrowstore::submit::{Plain, task_borrows};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-task-borrows");
/// let a = store.owned_proxy(1u8)?;
/// let mut args = (borrow(&a)?, Plain(7));
/// assert_eq!(task_borrows(&mut args).len(), 1);
/// # Ok(()) }
/// ```
pub fn task_borrows<A: TaskArgs>(args: &mut A) -> Vec<BorrowInfo> {
    let mut v = ArgsVisitor {
        mode: Mode::Inspect(Vec::new()),
        stores: Few::Zero,
    };
    args.visit(&mut v);
    v.borrows()
}

/// A plain value among a task's arguments: no borrow, nothing to end.
///
/// ```
/// use borrowstore::submit::Plain;
/// let p = Plain(vec![1, 2, 3]);
/// assert_eq!(p.0.len(), 3);
/// assert_eq!(p.into_inner(), vec![1, 2, 3]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plain<T>(pub T);

impl<T> Plain<T> {
    /// The value.
    ///
    /// ```
    /// use borrowstore::submit::Plain;
    /// assert_eq!(Plain("config").into_inner(), "config");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Plain<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Plain<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Send + 'static> TaskArgs for Plain<T> {
    fn visit(&mut self, _: &mut ArgsVisitor) {}
}

macro_rules! plain_args {
    ($($t:ty),*) => {$(
        impl TaskArgs for $t {
            fn visit(&mut self, _: &mut ArgsVisitor) {}
        }
    )*};
}

lists::with_plain_types!(plain_args);

impl<T: Storable> TaskArgs for RefProxy<T> {
    fn visit(&mut self, v: &mut ArgsVisitor) {
        v.borrow(self);
    }
}

impl<T: Storable> TaskArgs for RefMutProxy<T> {
    fn visit(&mut self, v: &mut ArgsVisitor) {
        v.borrow(self);
    }
}

/// An owner moves into the task: no borrow, but its store is waited for
/// (dropping the owner in the task queues a release).
impl<T: Storable> TaskArgs for OwnedProxy<T> {
    fn visit(&mut self, v: &mut ArgsVisitor) {
        v.store_of(OwnedProxy::store(self).clone());
    }
}

/// A plain proxy holds no claim: nothing to end.
impl<T: Storable> TaskArgs for Proxy<T> {
    fn visit(&mut self, _: &mut ArgsVisitor) {}
}

impl<A: TaskArgs> TaskArgs for Option<A> {
    fn visit(&mut self, v: &mut ArgsVisitor) {
        if let Some(a) = self {
            a.visit(v);
        }
    }
}

impl<A: TaskArgs> TaskArgs for Vec<A> {
    fn visit(&mut self, v: &mut ArgsVisitor) {
        for a in self {
            a.visit(v);
        }
    }
}

impl<A: TaskArgs> TaskArgs for Box<A> {
    fn visit(&mut self, v: &mut ArgsVisitor) {
        (**self).visit(v);
    }
}

impl<A: TaskArgs, const N: usize> TaskArgs for [A; N] {
    fn visit(&mut self, v: &mut ArgsVisitor) {
        for a in self {
            a.visit(v);
        }
    }
}

macro_rules! tuple_args {
    ($($name:ident)+) => {
        impl<$($name: TaskArgs),+> TaskArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn visit(&mut self, v: &mut ArgsVisitor) {
                let ($($name,)+) = self;
                $($name.visit(v);)+
            }
        }
    };
}

lists::with_tuples!(tuple_args);
