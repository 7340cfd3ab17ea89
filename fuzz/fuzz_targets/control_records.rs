//! Records after the handshake, as the kernel hands them over, judged by
//! `ControlParser`. The input is a sequence of records: a type byte, a
//! length byte (pairs of them for longer records), then the payload.
//! Beyond "never panics": a record stream the parser accepts means the same
//! handshake messages however it was split into records (but a KeyUpdate
//! must end its record, so joining may only add that error).
#![no_main]

use ktls_core::{ControlParser, PostHandshake, Step};
use libfuzzer_sys::fuzz_target;

const HANDSHAKE: u8 = 22;

fuzz_target!(|input: &[u8]| {
    let records = split_records(input);
    let mut parser = ControlParser::default();
    let mut messages = Vec::new();
    let mut joined = Vec::new();
    let mut only_handshake = true;
    for &(content_type, payload) in &records {
        only_handshake &= content_type == Some(HANDSHAKE);
        if content_type == Some(HANDSHAKE) {
            joined.extend_from_slice(payload);
        }
        match parser.record(content_type, payload) {
            Ok(Step::Handshake { messages: got, fragment_pending }) => {
                if let Some(pos) = got.iter().position(|m| matches!(m, PostHandshake::KeyUpdate { .. })) {
                    assert_eq!(pos, got.len() - 1, "a KeyUpdate ends its record");
                    assert!(!fragment_pending, "nothing may follow a KeyUpdate");
                }
                assert_eq!(fragment_pending, parser.key_update_split() || fragment_pending);
                messages.extend(got);
            }
            Ok(Step::Data(n)) => assert_eq!(n, payload.len()),
            Ok(_) => {}
            Err(err) => {
                assert!(err.code().starts_with("ERR_"));
                return;
            }
        }
    }
    if !only_handshake || joined.is_empty() {
        return;
    }
    match ControlParser::default().record(Some(HANDSHAKE), &joined) {
        Ok(Step::Handshake { messages: whole, .. }) => assert_eq!(whole, messages),
        Ok(other) => panic!("a handshake record read as {other:?}"),
        // Joining can only put something behind a KeyUpdate.
        Err(err) => assert!(messages.iter().any(|m| matches!(m, PostHandshake::KeyUpdate { .. })), "{err}"),
    }
});

/// Cuts the fuzzer's bytes into (content type, payload) records; a type
/// byte of 0xff stands for "no record type" (the stream's end).
fn split_records(mut input: &[u8]) -> Vec<(Option<u8>, &[u8])> {
    let mut records = Vec::new();
    while let [content_type, len, rest @ ..] = input {
        let len = usize::from(*len).min(rest.len());
        let content_type = (*content_type != 0xff).then_some(*content_type);
        records.push((content_type, &rest[..len]));
        input = &rest[len..];
    }
    records
}
