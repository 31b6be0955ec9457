//! Readers for /proc: process identity, threads' kernel wait state, fds and mappings.
