//! What a record read after the handshake means, decided without any I/O:
//! the offloaded path's record rules (RFC 8446 §5 and §6) in one place,
//! small enough to fuzz (`fuzz/`). `record.rs` reads the records and acts.

use rustls::AlertDescription;

use crate::error::{Error, Result};
use crate::sys::{CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE};

const HANDSHAKE_NEW_SESSION_TICKET: u8 = 4;
pub(crate) const HANDSHAKE_KEY_UPDATE: u8 = 24;
pub(crate) const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_USER_CANCELED: u8 = 90;

/// Larger than any post-handshake message a peer has reason to send (a
/// NewSessionTicket is at most about 128 KiB): a bound on what we buffer.
pub const MAX_POST_HANDSHAKE_MESSAGE: usize = 256 * 1024;

/// A whole post-handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostHandshake {
    /// A NewSessionTicket's body (for a client's rustls).
    Ticket(Vec<u8>),
    /// The peer moves to its next key; `update_requested`: we must follow.
    KeyUpdate {
        /// The peer asked us to update our own key too.
        update_requested: bool,
    },
}

/// What one record asks of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The peer is done (close_notify, or the TCP stream ended).
    Eof,
    /// `n` bytes of application data.
    Data(usize),
    /// Nothing to do (an ignorable alert, an empty data record).
    Handled,
    /// Handshake messages to act on, in order; `fragment_pending`: the
    /// record ended inside another one, whose rest must come next.
    Handshake {
        /// Complete messages, in the order they came.
        messages: Vec<PostHandshake>,
        /// A message continues in the next record.
        fragment_pending: bool,
    },
}

/// The records' rules across records: handshake messages split over them.
#[derive(Debug, Default)]
pub struct ControlParser {
    partial: Vec<u8>,
}

impl ControlParser {
    /// Judges one record: `content_type` as the kernel reported it (`None`:
    /// no record type, which is how the TCP stream's end reads), `payload`
    /// its plaintext.
    pub fn record(&mut self, content_type: Option<u8>, payload: &[u8]) -> Result<Step> {
        let Some(content_type) = content_type else {
            return Ok(if payload.is_empty() {
                Step::Eof
            } else {
                Step::Data(payload.len())
            });
        };
        // RFC 8446 §5.1: nothing may come between the fragments of a handshake message.
        if !self.partial.is_empty() && content_type != CONTENT_HANDSHAKE {
            return Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "a record inside a fragmented handshake message",
            ));
        }
        match content_type {
            CONTENT_APPLICATION_DATA if payload.is_empty() => Ok(Step::Handled),
            CONTENT_APPLICATION_DATA => Ok(Step::Data(payload.len())),
            CONTENT_ALERT if alert_ends_stream(payload)? => Ok(Step::Eof),
            CONTENT_ALERT => Ok(Step::Handled),
            CONTENT_HANDSHAKE if payload.is_empty() => Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "an empty handshake record",
            )),
            CONTENT_HANDSHAKE => self.handshake_record(payload),
            _ => Err(Error::violation(
                AlertDescription::UnexpectedMessage,
                "a record of an unknown type",
            )),
        }
    }

    /// The bytes so far are the start of a KeyUpdate split across records.
    pub fn key_update_split(&self) -> bool {
        self.partial.first() == Some(&HANDSHAKE_KEY_UPDATE)
    }

    fn handshake_record(&mut self, record: &[u8]) -> Result<Step> {
        self.partial.extend_from_slice(record);
        let mut messages = Vec::new();
        while let Some((msg_type, body_len)) = complete_message(&self.partial)? {
            let message: Vec<u8> = self.partial.drain(..4 + body_len).collect();
            let body = &message[4..];
            messages.push(match msg_type {
                HANDSHAKE_NEW_SESSION_TICKET => PostHandshake::Ticket(body.to_vec()),
                HANDSHAKE_KEY_UPDATE => {
                    // RFC 8446 §5.1: a KeyUpdate ends its record (the keys change after it).
                    if !self.partial.is_empty() {
                        return Err(Error::violation(
                            AlertDescription::UnexpectedMessage,
                            "data after a KeyUpdate in the same record",
                        ));
                    }
                    key_update(body)?
                }
                _ => {
                    return Err(Error::violation(
                        AlertDescription::UnexpectedMessage,
                        "a handshake message not allowed after the handshake",
                    ))
                }
            });
        }
        Ok(Step::Handshake {
            messages,
            fragment_pending: !self.partial.is_empty(),
        })
    }
}

fn key_update(body: &[u8]) -> Result<PostHandshake> {
    match body {
        [0] => Ok(PostHandshake::KeyUpdate {
            update_requested: false,
        }),
        [1] => Ok(PostHandshake::KeyUpdate {
            update_requested: true,
        }),
        _ => Err(Error::violation(
            AlertDescription::DecodeError,
            "a malformed KeyUpdate",
        )),
    }
}

/// True for close_notify; an error for fatal alerts; false for alerts that
/// may be ignored (user_canceled, RFC 8446 §6.1).
fn alert_ends_stream(payload: &[u8]) -> Result<bool> {
    let [_level, description] = payload else {
        return Err(if payload.is_empty() {
            Error::violation(AlertDescription::UnexpectedMessage, "an empty alert record")
        } else {
            Error::violation(AlertDescription::DecodeError, "a malformed alert")
        });
    };
    match *description {
        ALERT_CLOSE_NOTIFY => Ok(true),
        ALERT_USER_CANCELED => Ok(false),
        other => Err(Error::AlertReceived(AlertDescription::from(other))),
    }
}

/// The type and body length of the first message in `buf`, if whole.
fn complete_message(buf: &[u8]) -> Result<Option<(u8, usize)>> {
    let [msg_type, a, b, c, rest @ ..] = buf else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([0, *a, *b, *c]) as usize;
    if len > MAX_POST_HANDSHAKE_MESSAGE {
        return Err(Error::violation(
            AlertDescription::UnexpectedMessage,
            "a post-handshake message too large",
        ));
    }
    Ok((rest.len() >= len).then_some((*msg_type, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser_step(records: &[(u8, &[u8])]) -> Result<Step> {
        let mut parser = ControlParser::default();
        let mut last = Step::Handled;
        for (content_type, payload) in records {
            last = parser.record(Some(*content_type), payload)?;
        }
        Ok(last)
    }

    #[test]
    fn close_notify_ends_the_stream() {
        assert_eq!(parser_step(&[(CONTENT_ALERT, &[1, 0])]).unwrap(), Step::Eof);
    }

    #[test]
    fn user_canceled_is_ignored() {
        assert_eq!(
            parser_step(&[(CONTENT_ALERT, &[1, 90])]).unwrap(),
            Step::Handled
        );
    }

    #[test]
    fn fatal_alerts_carry_their_code() {
        let err = parser_step(&[(CONTENT_ALERT, &[2, 40])]).unwrap_err();
        assert_eq!(err.code(), "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE");
    }

    #[test]
    fn empty_and_truncated_alerts_are_violations() {
        let empty = parser_step(&[(CONTENT_ALERT, &[])]).unwrap_err();
        assert_eq!(
            empty.alert_to_send(),
            Some(AlertDescription::UnexpectedMessage)
        );
        let truncated = parser_step(&[(CONTENT_ALERT, &[2])]).unwrap_err();
        assert_eq!(
            truncated.alert_to_send(),
            Some(AlertDescription::DecodeError)
        );
    }

    #[test]
    fn a_key_update_split_across_records_waits_for_its_tail() {
        let mut parser = ControlParser::default();
        let first = parser.record(Some(CONTENT_HANDSHAKE), &[24, 0]).unwrap();
        assert_eq!(
            first,
            Step::Handshake {
                messages: vec![],
                fragment_pending: true
            }
        );
        assert!(parser.key_update_split());
        let second = parser.record(Some(CONTENT_HANDSHAKE), &[0, 1, 1]).unwrap();
        let update = PostHandshake::KeyUpdate {
            update_requested: true,
        };
        assert_eq!(
            second,
            Step::Handshake {
                messages: vec![update],
                fragment_pending: false
            }
        );
    }

    #[test]
    fn data_between_fragments_is_refused() {
        let err = parser_step(&[
            (CONTENT_HANDSHAKE, &[24, 0]),
            (CONTENT_APPLICATION_DATA, b"x"),
        ]);
        assert_eq!(
            err.unwrap_err().alert_to_send(),
            Some(AlertDescription::UnexpectedMessage)
        );
    }

    #[test]
    fn a_key_update_must_end_its_record() {
        let err = parser_step(&[(CONTENT_HANDSHAKE, &[24, 0, 0, 1, 0, 24])]);
        assert_eq!(
            err.unwrap_err().alert_to_send(),
            Some(AlertDescription::UnexpectedMessage)
        );
    }

    #[test]
    fn tickets_before_a_key_update_in_one_record_are_fine() {
        let step =
            parser_step(&[(CONTENT_HANDSHAKE, &[4, 0, 0, 2, 9, 9, 24, 0, 0, 1, 0])]).unwrap();
        let Step::Handshake {
            messages,
            fragment_pending: false,
        } = step
        else {
            panic!("{step:?}")
        };
        assert_eq!(messages.len(), 2);
    }

    #[test]
    fn oversized_messages_are_refused_before_buffering() {
        assert!(parser_step(&[(CONTENT_HANDSHAKE, &[4, 0x10, 0, 0])]).is_err());
    }

    #[test]
    fn the_stream_end_has_no_record_type() {
        let mut parser = ControlParser::default();
        assert_eq!(parser.record(None, &[]).unwrap(), Step::Eof);
    }
}
