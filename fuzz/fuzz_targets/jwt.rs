//! `jwt`: see `cerebrum_fuzz_harness::jwt::run` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cerebrum_fuzz_harness::jwt::run(data));
