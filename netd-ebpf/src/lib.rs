#![no_std]
// Library target so that netd can name this crate as a build dependency.
