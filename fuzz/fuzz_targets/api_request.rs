#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| netd::fuzzing::api_request(input));
