//! `server_session`: see `cerebrum_fuzz_harness::session::run` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cerebrum_fuzz_harness::session::run(data));
