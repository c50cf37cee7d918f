//! Conversions between the WIT-generated types and the capabilities' own types.
//!
//! The two sides mirror each other field for field; [`Conv`] converts structurally (through
//! `Option`, `Vec` and pairs) and the macros below spell out each record and enum once.

/// Structural conversion into `T` (a local stand-in for `Into`, so it can be implemented
/// for `Option`/`Vec` of foreign types).
pub trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! identity {
    ($($t:ty),*) => { $(impl Conv<$t> for $t { fn conv(self) -> $t { self } })* };
}
identity!(String, bool, u8, u32, u64, i32, f32, f64);

impl<T: Conv<U>, U> Conv<Option<U>> for Option<T> {
    fn conv(self) -> Option<U> {
        self.map(Conv::conv)
    }
}

impl<T: Conv<U>, U> Conv<Vec<U>> for Vec<T> {
    fn conv(self) -> Vec<U> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<C>, B: Conv<D>, C, D> Conv<(C, D)> for (A, B) {
    fn conv(self) -> (C, D) {
        (self.0.conv(), self.1.conv())
    }
}

/// `record!(A, B { f1, f2 })`: field-by-field conversion both ways
/// (`A => B` for one direction only).
macro_rules! record {
    ($a:path, $b:path { $($f:ident),* $(,)? }) => {
        $crate::runtime::host::convert::record!($a => $b { $($f),* });
        $crate::runtime::host::convert::record!($b => $a { $($f),* });
    };
    ($a:path => $b:path { $($f:ident),* $(,)? }) => {
        impl $crate::runtime::host::convert::Conv<$b> for $a {
            fn conv(self) -> $b {
                $b { $( $f: $crate::runtime::host::convert::Conv::conv(self.$f) ),* }
            }
        }
    };
}

/// `unit_enum!(A, B { V1, V2 })`: conversion of field-less enums with the same cases.
macro_rules! unit_enum {
    ($a:path, $b:path { $($v:ident),* $(,)? }) => {
        impl $crate::runtime::host::convert::Conv<$b> for $a {
            fn conv(self) -> $b {
                use $a as A;
                use $b as B;
                match self { $(A::$v => B::$v),* }
            }
        }
        impl $crate::runtime::host::convert::Conv<$a> for $b {
            fn conv(self) -> $a {
                use $a as A;
                use $b as B;
                match self { $(B::$v => A::$v),* }
            }
        }
    };
}

pub(crate) use {record, unit_enum};
