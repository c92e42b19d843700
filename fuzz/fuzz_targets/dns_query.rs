#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| netd::fuzzing::dns_query(input));
