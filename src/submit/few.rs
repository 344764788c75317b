//! [`Few`]: the short lists of a task's borrows and stores.

/// A list that keeps zero or one element without allocating (most tasks
/// have one borrow and one store).
pub(crate) enum Few<T> {
    Zero,
    One(T),
    Many(Vec<T>),
}

impl<T> Few<T> {
    pub(crate) fn push(&mut self, v: T) {
        *self = match std::mem::replace(self, Few::Zero) {
            Few::Zero => Few::One(v),
            Few::One(a) => Few::Many(vec![a, v]),
            Few::Many(mut all) => {
                all.push(v);
                Few::Many(all)
            }
        };
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Few::Zero => &[],
            Few::One(a) => std::slice::from_ref(a),
            Few::Many(all) => all,
        }
    }
}

impl<T> From<Vec<T>> for Few<T> {
    fn from(v: Vec<T>) -> Self {
        Few::Many(v)
    }
}
