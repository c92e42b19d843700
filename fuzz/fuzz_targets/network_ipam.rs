#![no_main]
libfuzzer_sys::fuzz_target!(|input: &str| netd::fuzzing::network_ipam(input));
