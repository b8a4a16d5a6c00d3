#![no_main]
//! libFuzzer entry for `calyx_fuzz::token_request`, where the input format and properties are documented.

libfuzzer_sys::fuzz_target!(|data: &[u8]| calyx_fuzz::token_request(data));
