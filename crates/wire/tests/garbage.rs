//! Garbage in: random bytes, and valid frames that are truncated, bit-flipped or given huge
//! declared lengths, go through `split_frame`, `Request::decode`, `Reply::decode` and
//! `split_append_block`. Nothing may panic, and no single allocation made while decoding may
//! exceed the frame limit. A counting global allocator measures the largest allocation, per
//! thread and only while `largest_allocation` runs.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use common::{any_reply, any_request, reply_frame, request_frame};
use pravaha_wire::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// Passes everything to the system allocator and records the largest size requested.
struct CountingAllocator;

fn record(size: usize) {
    // `try_with` because the allocator also runs while thread-locals are being torn down.
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            LARGEST.with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `work` and returns the largest single allocation it made on this thread.
fn largest_allocation(work: impl FnOnce()) -> usize {
    LARGEST.with(|largest| largest.set(0));
    MEASURING.with(|measuring| measuring.set(true));
    work();
    MEASURING.with(|measuring| measuring.set(false));
    LARGEST.with(Cell::get)
}

/// Decodes every payload both ways, and as an append-block body split at a few points.
fn decode_everything(payload: &Bytes, type_code: i32) {
    let _ = Request::decode(type_code, payload.clone());
    let _ = Reply::decode(type_code, payload.clone());
    for size_of_whole_events in [0, 8, payload.len() / 2, payload.len()] {
        let _ = split_append_block(payload, size_of_whole_events);
    }
}

/// Feeds `input` through the whole decoding path and checks both allocation bounds.
fn feed(input: &[u8]) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(input);
    loop {
        let mut split = None;
        // Splitting may reserve room for the announced frame: header plus at most the limit.
        let reserved =
            largest_allocation(|| split = Some(split_frame(&mut buf, MAX_FRAME_PAYLOAD)));
        prop_assert!(
            reserved <= MAX_FRAME_PAYLOAD + HEADER_LEN,
            "split reserved {reserved}"
        );
        let Some(Ok(Some((type_code, payload)))) = split else {
            return Ok(());
        };
        let decoded = largest_allocation(|| decode_everything(&payload, type_code));
        prop_assert!(decoded <= MAX_FRAME_PAYLOAD, "decoding allocated {decoded}");
        // The same payload under every known type code: garbage for most of them.
        for code in ALL_TYPE_CODES {
            let largest = largest_allocation(|| decode_everything(&payload, code));
            prop_assert!(
                largest <= MAX_FRAME_PAYLOAD,
                "type {code} allocated {largest}"
            );
        }
    }
}

const ALL_TYPE_CODES: [i32; 71] = [
    -127, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 20, 21, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 50, 51, 52, 53, 55, 56, 57, 58, 59, 60, 61, 68, 69,
    70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91,
];

/// One encoded valid frame of either direction.
fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any_request().prop_map(|request| request_frame(&request).to_vec()),
        any_reply().prop_map(|reply| reply_frame(&reply).to_vec()),
    ]
}

/// Ways to damage a frame.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    /// Overwrites 4 bytes (a declared i32 length or count) with a huge or negative value.
    HugeI32(usize, i32),
    /// Overwrites 2 bytes (a declared string length) with a large value.
    HugeU16(usize, u16),
}

fn damage() -> impl Strategy<Value = Damage> {
    let huge_i32 = prop_oneof![
        Just(i32::MAX),
        Just(-1),
        Just(0x00FF_FFFF),
        Just(0x0100_0000),
        any::<i32>()
    ];
    let huge_u16 = prop_oneof![Just(u16::MAX), any::<u16>()];
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 1..=u8::MAX).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        (any::<usize>(), huge_i32).prop_map(|(at, value)| Damage::HugeI32(at, value)),
        (any::<usize>(), huge_u16).prop_map(|(at, value)| Damage::HugeU16(at, value)),
    ]
}

fn apply(frame: &mut Vec<u8>, damage: &Damage) {
    let length = frame.len();
    let at = |index: usize, width: usize| index % (length.saturating_sub(width) + 1);
    match *damage {
        Damage::Truncate(index) => frame.truncate(index % (frame.len() + 1)),
        Damage::Flip(index, mask) => {
            let index = at(index, 1);
            if let Some(byte) = frame.get_mut(index) {
                *byte ^= mask;
            }
        }
        Damage::HugeI32(index, value) => overwrite(frame, at(index, 4), &value.to_be_bytes()),
        Damage::HugeU16(index, value) => overwrite(frame, at(index, 2), &value.to_be_bytes()),
    }
}

fn overwrite(frame: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(target) = frame.get_mut(at..at + bytes.len()) {
        target.copy_from_slice(bytes);
    }
}

proptest! {
    #![proptest_config(Config { cases: 2048, failure_persistence: None, ..Config::default() })]

    #[test]
    fn random_bytes(input in vec(any::<u8>(), 0..256)) {
        feed(&input)?;
    }

    #[test]
    fn random_payloads_under_every_type_code(payload in vec(any::<u8>(), 0..128)) {
        let mut frame = Vec::new();
        for code in ALL_TYPE_CODES {
            frame.extend_from_slice(&code.to_be_bytes());
            frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
            frame.extend_from_slice(&payload);
        }
        feed(&frame)?;
    }

    #[test]
    fn damaged_valid_frames(
        frame in valid_frame(),
        damages in vec(damage(), 1..4),
        // Bytes after the frame, so that a damaged length may reach into them.
        tail in vec(any::<u8>(), 0..16),
    ) {
        let mut frame = frame;
        for damage in &damages {
            apply(&mut frame, damage);
        }
        frame.extend_from_slice(&tail);
        feed(&frame)?;
    }
}

/// Every 4-byte and 2-byte window of a valid payload overwritten with a huge length, so every
/// declared string, byte, list and table-key length of every command is hit.
#[test]
fn huge_declared_lengths_at_every_offset() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for (_, strategy) in common::request_cases() {
        let request = strategy.new_tree(&mut runner).unwrap().current();
        check_every_window(&request_frame(&request));
    }
    for (_, strategy) in common::reply_cases() {
        let reply = strategy.new_tree(&mut runner).unwrap().current();
        check_every_window(&reply_frame(&reply));
    }
}

fn check_every_window(frame: &[u8]) {
    for at in HEADER_LEN..frame.len() {
        for value in [i32::MAX, 0x00FF_FFFF, -1] {
            let mut damaged = frame.to_vec();
            overwrite(&mut damaged, at, &value.to_be_bytes());
            feed(&damaged).unwrap();
        }
        let mut damaged = frame.to_vec();
        overwrite(&mut damaged, at, &u16::MAX.to_be_bytes());
        feed(&damaged).unwrap();
    }
}

/// The measurement itself works: a known allocation is seen, and only while measuring.
#[test]
fn the_counting_allocator_sees_allocations() {
    let seen = largest_allocation(|| drop(std::hint::black_box(vec![0u8; 123_456])));
    assert!(seen >= 123_456, "saw {seen}");
    drop(std::hint::black_box(vec![0u8; 999_999]));
    assert_eq!(
        LARGEST.with(Cell::get),
        seen,
        "nothing recorded outside a measurement"
    );
}

/// A frame announcing the largest payload, arriving behind a frame already split off from the
/// same buffer: the room reserved for it is one frame, not one frame plus what came before
/// (proptest found `BytesMut::reserve` keeping the earlier frame's bytes in the allocation).
#[test]
fn room_for_a_large_frame_after_a_split_one_is_one_frame() {
    let mut input = Vec::new();
    input.extend_from_slice(&1_i32.to_be_bytes());
    input.extend_from_slice(&31_i32.to_be_bytes());
    input.extend_from_slice(&[7; 31]);
    input.extend_from_slice(&1_i32.to_be_bytes());
    let announced = i32::try_from(MAX_FRAME_PAYLOAD).unwrap();
    input.extend_from_slice(&announced.to_be_bytes());
    input.extend_from_slice(&[9; 7]);
    let mut buf = BytesMut::from(&input[..]);
    let first = split_frame(&mut buf, MAX_FRAME_PAYLOAD).unwrap();
    assert_eq!(
        first.map(|(code, payload)| (code, payload.len())),
        Some((1, 31))
    );
    let mut second = None;
    let reserved = largest_allocation(|| second = Some(split_frame(&mut buf, MAX_FRAME_PAYLOAD)));
    assert!(
        matches!(second, Some(Ok(None))),
        "the second frame is incomplete"
    );
    assert!(
        reserved <= MAX_FRAME_PAYLOAD + HEADER_LEN,
        "reserved {reserved} for a frame of {}",
        MAX_FRAME_PAYLOAD + HEADER_LEN
    );
    assert_eq!(&buf[HEADER_LEN..], &[9; 7], "the buffered bytes are kept");
}
