//! Unwinding captured stacks into frames.
