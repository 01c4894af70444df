//! `protocol_decode`: see `cerebrum_fuzz_harness::protocol::run` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cerebrum_fuzz_harness::protocol::run(data));
