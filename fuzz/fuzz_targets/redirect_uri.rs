#![no_main]
//! libFuzzer entry for `calyx_fuzz::redirect_uri`, where the input format and properties are documented.

libfuzzer_sys::fuzz_target!(|data: &[u8]| calyx_fuzz::redirect_uri(data));
