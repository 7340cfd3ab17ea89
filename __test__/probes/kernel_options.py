"""What this kernel's kTLS accepts, found without ktls (an independent check
of its capability probe), on loopback pairs with a fixed TLS 1.3 AES-128-GCM key.

usage: kernel_options.py
Prints one JSON object: {"rekey", "txZeroCopy", "txMaxPayload", "rxExpectNoPad"}.
"""

import json
import socket
import struct

SOL_TLS = 282
TCP_ULP = 31
TLS_TX, TLS_RX, TLS_TX_ZEROCOPY_RO, TLS_RX_EXPECT_NO_PAD, TLS_TX_MAX_PAYLOAD_LEN = 1, 2, 3, 4, 5
TLS_SET_RECORD_TYPE = 1
TLS_1_3, AES_GCM_128 = 0x0304, 51
APPLICATION_DATA = 23

live = []  # sockets stay open until exit: a closed peer would change the answers


def pair():
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    live.extend([client, accepted])
    return client, accepted


def crypto_info(fill):
    """struct tls12_crypto_info_aes_gcm_128: iv[8] key[16] salt[4] rec_seq[8]."""
    return struct.pack("=HH", TLS_1_3, AES_GCM_128) + bytes([fill]) * 28 + bytes(8)


def offloaded(sock, direction, fill=1):
    sock.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
    sock.setsockopt(SOL_TLS, direction, crypto_info(fill))
    return sock


def accepted(attempt):
    try:
        attempt()
        return True
    except OSError:
        return False


def rekey():
    sock = offloaded(pair()[0], TLS_TX)
    sock.setsockopt(SOL_TLS, TLS_TX, crypto_info(2))


def zero_copy():
    offloaded(pair()[0], TLS_TX).setsockopt(SOL_TLS, TLS_TX_ZEROCOPY_RO, 1)


def max_payload():
    offloaded(pair()[0], TLS_TX).setsockopt(SOL_TLS, TLS_TX_MAX_PAYLOAD_LEN, struct.pack("=H", 1024))


def no_pad_keeps_content():
    """A record of type 0 whose content ends in 0x17 and zeros decrypts as a
    padded application data record: with the option on, only "ping" may come out."""
    sender, receiver = pair()
    offloaded(sender, TLS_TX)
    offloaded(receiver, TLS_RX)
    if not accepted(lambda: receiver.setsockopt(SOL_TLS, TLS_RX_EXPECT_NO_PAD, 1)):
        return False
    for content in (b"", b"ping"):
        record = content + bytes([APPLICATION_DATA]) + bytes(30)
        sender.sendmsg([record], [(SOL_TLS, TLS_SET_RECORD_TYPE, bytes([0]))])
    receiver.settimeout(2)
    try:
        return receiver.recv(64) == b"ping"
    except OSError:  # EBADMSG, a timeout: not kept intact either
        return False


print(json.dumps({
    "rekey": accepted(rekey),
    "txZeroCopy": accepted(zero_copy),
    "txMaxPayload": accepted(max_payload),
    "rxExpectNoPad": no_pad_keeps_content(),
}))
