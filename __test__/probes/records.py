"""Post-handshake record probes, played by a tlslite-ng client against an
echo server. tlslite-ng builds records a well-behaved TLS library never
sends (padding, empty alerts, split or doubled KeyUpdates, forged tags), so
the server's answer to each can be checked against RFC 8446.

usage: records.py PORT SCENARIO [--tls12]
Prints one JSON object: what came back (echoed bytes, the alert received, or
how the connection ended).
"""

import json
import socket
import sys

from tlslite import HandshakeSettings, TLSConnection
from tlslite.constants import AlertDescription, ContentType
from tlslite.errors import TLSAbruptCloseError, TLSRemoteAlert
from tlslite.messages import Message

KEY_UPDATE = 24


def send_record(conn, content_type, payload):
    for _ in conn._recordLayer.sendRecord(Message(content_type, bytearray(payload))):
        pass


def send_padded(conn, payload, padding):
    conn._recordLayer.padding_cb = lambda length, content_type, limit: padding
    try:
        send_record(conn, ContentType.application_data, payload)
    finally:
        conn._recordLayer.padding_cb = None


def next_write_key(conn):
    """Our KeyUpdate went out: later records use our next traffic key."""
    session = conn.session
    session.cl_app_secret, session.sr_app_secret = conn._recordLayer.calcTLS1_3KeyUpdate_reciever(
        session.cipherSuite, session.cl_app_secret, session.sr_app_secret
    )


def send_forged(conn, payload):
    """An application data record whose authentication tag is wrong."""
    record_socket = conn._recordLayer._recordSocket
    honest_send = record_socket.send

    def forge(msg, padding=0):
        msg.data[-1] ^= 0x01
        return honest_send(msg, padding)

    record_socket.send = forge
    try:
        send_record(conn, ContentType.application_data, payload)
    finally:
        record_socket.send = honest_send


def padded(conn):
    send_padded(conn, b"", 30)
    send_padded(conn, b"ping", 30)
    send_padded(conn, b"", 255)
    send_padded(conn, b"pong", 1000)


def zero_length_data(conn):
    send_record(conn, ContentType.application_data, b"")
    send_record(conn, ContentType.application_data, b"ping")


def fragmented_data(conn):
    for byte in b"ping":
        send_record(conn, ContentType.application_data, bytes([byte]))


def empty_alert(conn):
    send_record(conn, ContentType.alert, b"")
    send_record(conn, ContentType.application_data, b"after")


def truncated_alert(conn):
    send_record(conn, ContentType.alert, b"\x01")
    send_record(conn, ContentType.application_data, b"after")


def empty_handshake(conn):
    send_record(conn, ContentType.handshake, b"")
    send_record(conn, ContentType.application_data, b"after")


def data_inside_key_update(conn):
    send_record(conn, ContentType.handshake, bytes([KEY_UPDATE, 0]))
    send_record(conn, ContentType.application_data, b"inside")
    send_record(conn, ContentType.handshake, bytes([0, 1, 0]))


def two_key_updates_in_one_record(conn):
    one = bytes([KEY_UPDATE, 0, 0, 1, 0])
    send_record(conn, ContentType.handshake, one + one)
    send_record(conn, ContentType.application_data, b"after")


def split_key_update(conn):
    send_record(conn, ContentType.handshake, bytes([KEY_UPDATE, 0]))
    send_record(conn, ContentType.handshake, bytes([0, 1, 0]))
    next_write_key(conn)
    send_record(conn, ContentType.application_data, b"ping")


def key_update(conn):
    send_record(conn, ContentType.handshake, bytes([KEY_UPDATE, 0, 0, 1, 0]))
    next_write_key(conn)
    send_record(conn, ContentType.application_data, b"ping")


def key_update_requested(conn):
    send_record(conn, ContentType.handshake, bytes([KEY_UPDATE, 0, 0, 1, 1]))
    next_write_key(conn)
    send_record(conn, ContentType.application_data, b"ping")


def key_update_flood(conn):
    """More KeyUpdates in a second than a peer has reason to send."""
    for _ in range(40):
        send_record(conn, ContentType.handshake, bytes([KEY_UPDATE, 0, 0, 1, 0]))
        next_write_key(conn)
    send_record(conn, ContentType.application_data, b"after")


def forged_tag(conn):
    send_forged(conn, b"ping")


def oversized_record(conn):
    send_record(conn, ContentType.application_data, b"x" * (2**14 + 1))


def full_record(conn):
    send_record(conn, ContentType.application_data, b"x" * 2**14)


SCENARIOS = {
    "padded": padded,
    "zero-length-data": zero_length_data,
    "fragmented-data": fragmented_data,
    "empty-alert": empty_alert,
    "truncated-alert": truncated_alert,
    "empty-handshake": empty_handshake,
    "data-inside-key-update": data_inside_key_update,
    "two-key-updates-in-one-record": two_key_updates_in_one_record,
    "split-key-update": split_key_update,
    "key-update": key_update,
    "key-update-requested": key_update_requested,
    "key-update-flood": key_update_flood,
    "forged-tag": forged_tag,
    "oversized-record": oversized_record,
    "full-record": full_record,
}


def collect(conn, expected_bytes):
    """Reads until the server ends the connection or echoed what we sent."""
    received = bytearray()
    while True:
        try:
            chunk = conn.read()
        except TLSRemoteAlert as alert:
            name = AlertDescription.toStr(alert.description)
            return {"received": received.decode("latin-1"), "end": "alert", "alert": name}
        except TLSAbruptCloseError:
            return {"received": received.decode("latin-1"), "end": "eof"}
        except ConnectionResetError:
            return {"received": received.decode("latin-1"), "end": "reset"}
        except socket.timeout:
            return {"received": received.decode("latin-1"), "end": "timeout"}
        if not chunk:
            return {"received": received.decode("latin-1"), "end": "close_notify"}
        received += chunk
        if expected_bytes and len(received) >= expected_bytes:
            return {"received": received.decode("latin-1"), "end": "open"}


def oversized_handshake_record(port):
    """A plaintext record of 2^14 + 1 bytes where the ClientHello belongs."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    body = bytes([1]) + (2**14 - 3).to_bytes(3, "big") + bytes(2**14 - 3)
    try:
        sock.sendall(bytes([ContentType.handshake, 3, 1]) + len(body).to_bytes(2, "big") + body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = bytearray()
    try:
        while chunk := sock.recv(4096):
            answer += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    alert = None
    if len(answer) >= 7 and answer[0] == ContentType.alert:
        alert = AlertDescription.toStr(answer[6])
    return {"received": "", "end": "alert" if alert else "eof", "alert": alert}


RAW_SCENARIOS = {"oversized-handshake-record": oversized_handshake_record}


def main():
    port = int(sys.argv[1])
    if sys.argv[2] in RAW_SCENARIOS:
        print(json.dumps(RAW_SCENARIOS[sys.argv[2]](port)))
        return
    scenario = SCENARIOS[sys.argv[2]]
    settings = HandshakeSettings()
    if "--tls12" in sys.argv:
        settings.maxVersion = (3, 3)
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    conn = TLSConnection(sock)
    conn.handshakeClientCert(settings=settings, serverName="localhost")
    # The echo server says how many bytes to wait for before reporting.
    expected = {"padded": 8, "zero-length-data": 4, "fragmented-data": 4, "split-key-update": 4,
                "key-update": 4, "key-update-requested": 4, "full-record": 2**14}.get(sys.argv[2], 0)
    try:
        scenario(conn)
    except (BrokenPipeError, ConnectionResetError):
        pass
    print(json.dumps(collect(conn, expected)))


if __name__ == "__main__":
    main()
