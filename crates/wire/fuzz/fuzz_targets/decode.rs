//! Arbitrary bytes through `split_frame`, both decoders and `split_append_block`: nothing may
//! panic, and every command that decodes must encode again and decode to the same value.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pravaha_wire::{split_append_block, split_frame, Reply, Request, WireError, MAX_FRAME_PAYLOAD};

/// decode(encode(x)) == x for a decoded command of either enum.
macro_rules! check_round_trip {
    ($enum:ident, $command:expr) => {{
        let command = $command;
        let mut out = BytesMut::new();
        match command.encode(&mut out) {
            Ok(()) => {
                let (type_code, payload) = split_frame(&mut out, MAX_FRAME_PAYLOAD)
                    .expect("re-encoded frame splits")
                    .expect("re-encoded frame is whole");
                assert!(out.is_empty(), "one frame re-encoded");
                let again = $enum::decode(type_code, payload).expect("re-encoded frame decodes");
                assert_eq!(again, command);
            }
            // Absent trailing fields come back as defaults, which are written out: a payload
            // right at the limit may then exceed it.
            Err(WireError::FrameTooLarge { .. }) => {}
            Err(error) => panic!("{} decoded but does not encode: {error}", command.name()),
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some((type_code, payload))) = split_frame(&mut buf, MAX_FRAME_PAYLOAD) {
        if let Ok(request) = Request::decode(type_code, payload.clone()) {
            check_round_trip!(Request, request);
        }
        if let Ok(reply) = Reply::decode(type_code, payload.clone()) {
            check_round_trip!(Reply, reply);
        }
        let size_of_whole_events = payload.first().map_or(0, |byte| usize::from(*byte));
        if let Ok((whole_events, fragment)) = split_append_block(&payload, size_of_whole_events) {
            assert_eq!(&whole_events[..], &payload[..size_of_whole_events]);
            assert!(fragment.map_or(0, |fragment| fragment.len()) <= payload.len());
        }
    }
});
