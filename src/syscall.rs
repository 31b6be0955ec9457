//! System call names and argument decoding for x86-64 and arm64.
