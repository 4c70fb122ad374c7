//! Invariant: the disk image inspector (`inspect::Inspector`) never panics on any data cut into
//! any chunks, its memory stays under `inspect::MAX_RETAINED`, what it finds does not depend on
//! where the chunks end (the same data fed whole gives the same `Inspection`), and what it says
//! once the head is seen (`early`) is final: the same format and refusal at the end (only a
//! VHDX's size comes later).
//!
//! Input: one byte choosing the chunk sizes, then the data. So that a short input can reach
//! the structures that lie megabytes in (a VHDX region table at 192 KiB, its metadata region),
//! each `ff 5a 5a k` in the data stands for (k + 1) × 4 KiB of zeros; the data is at most
//! 4 MiB. The seeds in `fuzz/seeds/inspect_stream` are qemu-img images written this way.
#![no_main]

use glint::inspect::{Inspector, MAX_RETAINED};
use libfuzzer_sys::fuzz_target;

/// Longest expanded data.
const MAX_DATA: usize = 4 << 20;

/// The data `input` stands for, with every zero-run marker expanded.
fn expand(input: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() && data.len() < MAX_DATA {
        if input[i..].starts_with(&[0xff, 0x5a, 0x5a]) && i + 3 < input.len() {
            let zeros = (usize::from(input[i + 3]) + 1) * 4096;
            data.resize((data.len() + zeros).min(MAX_DATA), 0);
            i += 4;
        } else {
            data.push(input[i]);
            i += 1;
        }
    }
    data
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, rest)) = input.split_first() else {
        return;
    };
    let data = expand(rest);

    // Chunk sizes from 1 byte up to 2^(seed % 21), varied by a small xorshift; at most 4096
    // chunks, so that a run stays fast.
    let max_chunk = 1usize << (seed % 21);
    let min_chunk = data.len() / 4096 + 1;
    let mut state = u32::from(seed) | 0x9e37_0000;
    let mut chunked = Inspector::new();
    let mut early = None;
    let mut at = 0;
    while at < data.len() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state as usize % max_chunk + 1)
            .max(min_chunk)
            .min(data.len() - at);
        chunked.feed(&data[at..at + len]);
        at += len;
        assert!(
            chunked.retained() <= MAX_RETAINED,
            "{} bytes held after {at} bytes of data",
            chunked.retained()
        );
        if early.is_none() && chunked.head_seen() {
            early = Some(chunked.early());
        }
    }
    let found = chunked.finish();

    let mut whole = Inspector::new();
    whole.feed(&data);
    assert_eq!(found, whole.finish(), "the chunking changed the verdict");
    if let Some(Some(early)) = early {
        assert_eq!(
            (early.format, &early.unsafe_because),
            (found.format, &found.unsafe_because),
            "the head's verdict changed by the end"
        );
        if found.format != glint::inspect::Format::Vhdx {
            assert_eq!(early.virtual_size, found.virtual_size);
        }
    }
});
