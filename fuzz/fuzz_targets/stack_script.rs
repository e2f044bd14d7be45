//! Feeds arbitrary scripts to a whole stack: segments, application calls
//! and clock steps, decoded from the fuzzer's bytes, with the invariants of
//! the state-machine proptest (no panic, every answer a well-formed packet
//! from us, never past the stack's connection limit, everything freed once left alone).
//!
//! The script, its decoding and its checks are the proptest's own
//! (`crates/synack-core/tests/script`), so that a crash found here replays
//! as a test: put the input in `fuzz/corpus/stack_script`, which
//! `tests/fuzz_state.rs` replays.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/synack-core/tests/script/mod.rs"]
mod script;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = script::run(&script::decode(data)) {
        panic!("{broken}");
    }
});
