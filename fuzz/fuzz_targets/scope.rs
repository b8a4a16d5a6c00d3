#![no_main]
//! libFuzzer entry for `calyx_fuzz::scope`, where the input format and properties are documented.

libfuzzer_sys::fuzz_target!(|data: &[u8]| calyx_fuzz::scope(data));
