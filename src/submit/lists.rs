//! The lists of types that both [`TaskArgs`](crate::submit::TaskArgs) and
//! [`Portable`](crate::submit::remote::Portable) are implemented for: one
//! list, so that what a task takes in this process and what crosses into
//! another process stay the same.

/// Calls `$mac!` with every plain type that crosses into a task as it is
/// (as task arguments, and as portable values).
macro_rules! with_plain_types {
    ($mac:ident) => {
        $mac!(
            (),
            bool,
            char,
            u8,
            u16,
            u32,
            u64,
            u128,
            usize,
            i8,
            i16,
            i32,
            i64,
            i128,
            isize,
            f32,
            f64,
            String
        );
    };
}
pub(crate) use with_plain_types;

/// Calls `$mac!(A B …)` for every tuple arity that a task's arguments may
/// have, from 1 to 12.
macro_rules! with_tuples {
    ($mac:ident) => {
        $mac!(A);
        $mac!(A B);
        $mac!(A B C);
        $mac!(A B C D);
        $mac!(A B C D E);
        $mac!(A B C D E F);
        $mac!(A B C D E F G);
        $mac!(A B C D E F G H);
        $mac!(A B C D E F G H I);
        $mac!(A B C D E F G H I J);
        $mac!(A B C D E F G H I J K);
        $mac!(A B C D E F G H I J K L);
    };
}
pub(crate) use with_tuples;
