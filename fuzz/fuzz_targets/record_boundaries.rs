//! The handshake's record-exact reads: whatever arrives, `bytes_to_record_end`
//! never asks for bytes past the end of the record being read (those belong
//! to the kernel once it holds the keys), never asks for nothing, and
//! refuses plaintext records over 2^14 bytes.
#![no_main]

use ktls_core::bytes_to_record_end;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|stream: &[u8]| {
    let mut buf: Vec<u8> = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let want = match bytes_to_record_end(&buf) {
            Ok(want) => want,
            Err(_) => {
                assert!(oversized_plaintext_record(&buf));
                return;
            }
        };
        assert!(want > 0, "a read of nothing would spin");
        // A read takes at most `want` bytes (the socket may give fewer).
        let take = want.min(rest.len()).min(usize::from(rest[0]).max(1));
        buf.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        if take == want {
            assert!(at_boundary(&buf), "a full read must end at a header's or a record's end");
        }
    }
});

/// The buffer ends exactly where a record header or a record ends.
fn at_boundary(buf: &[u8]) -> bool {
    let mut at = 0;
    loop {
        if buf.len() == at || buf.len() == at + 5 {
            return true;
        }
        if buf.len() < at + 5 {
            return false;
        }
        at += 5 + usize::from(u16::from_be_bytes([buf[at + 3], buf[at + 4]]));
        if buf.len() < at {
            return false;
        }
    }
}

fn oversized_plaintext_record(buf: &[u8]) -> bool {
    let mut at = 0;
    while buf.len() - at >= 5 {
        let len = usize::from(u16::from_be_bytes([buf[at + 3], buf[at + 4]]));
        if len > 1 << 14 && buf[at] != 23 {
            return true;
        }
        at += 5 + len;
    }
    false
}
