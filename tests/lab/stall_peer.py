"""A seed that stalls: serves requests until STALL bytes of payload are sent, then sends half of the
next block's bytes and nothing more, keeping every socket open (it still reads). For scenario 6.

    stall_peer.py TORRENT DATA ADDR PORT STALL_AFTER_BYTES
Announces to the torrent's HTTP tracker as a seed (left=0) every 10 s. Prints `ready` and, once,
`stalled T` (unix time) on stdout.
"""
import hashlib
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request


def bdecode(b, i=0):
    c = b[i:i + 1]
    if c == b"i":
        j = b.index(b"e", i)
        return int(b[i + 1:j]), j + 1
    if c == b"l" or c == b"d":
        i, out = i + 1, []
        while b[i:i + 1] != b"e":
            v, i = bdecode(b, i)
            out.append(v)
        return (out if c == b"l" else dict(zip(out[::2], out[1::2]))), i + 1
    j = b.index(b":", i)
    n = int(b[i:j])
    return b[j + 1:j + 1 + n], j + 1 + n


def info_span(raw):
    """The raw bytes of the info dictionary (for the info-hash)."""
    i = raw.index(b"4:info") + 6
    _, end = bdecode(raw, i)
    return raw[i:end]


torrent, data, addr, port, stall_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
raw = open(torrent, "rb").read()
meta, _ = bdecode(raw)
ih = hashlib.sha1(info_span(raw)).digest()
plen = meta[b"info"][b"piece length"]
npieces = len(meta[b"info"][b"pieces"]) // 20
peer_id = b"-ST0001-" + os.urandom(12)
fd = os.open(data, os.O_RDONLY)
sent = 0
stalled = threading.Event()
lock = threading.Lock()


def announce():
    url = meta[b"announce"].decode()
    while True:
        q = urllib.parse.urlencode({"info_hash": ih, "peer_id": peer_id, "port": port, "uploaded": sent,
                                    "downloaded": 0, "left": 0, "compact": 1, "ip": addr})
        try:
            urllib.request.urlopen(f"{url}?{q}", timeout=5).read()
        except OSError:
            pass
        time.sleep(10)


def serve(c):
    global sent
    c.settimeout(None)
    hs = c.recv(68, socket.MSG_WAITALL)
    if len(hs) < 68 or hs[28:48] != ih:
        return c.close()
    c.sendall(b"\x13BitTorrent protocol" + b"\0" * 8 + ih + peer_id)
    bits = bytearray(b"\xff" * ((npieces + 7) // 8))
    if npieces % 8:
        bits[-1] = (0xff << (8 - npieces % 8)) & 0xff
    c.sendall(struct.pack(">IB", 1 + len(bits), 5) + bits + struct.pack(">IB", 1, 1))  # unchoke
    while True:
        head = c.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return
        n = struct.unpack(">I", head)[0]
        msg = c.recv(n, socket.MSG_WAITALL) if n else b""
        if not msg or msg[0] != 6 or stalled.is_set():
            continue  # keep-alives, interest, haves; and after the stall, silence
        idx, begin, length = struct.unpack(">III", msg[1:13])
        block = os.pread(fd, length, idx * plen + begin)
        piece = struct.pack(">IBII", 9 + length, 7, idx, begin) + block
        with lock:
            if sent + length > stall_after and not stalled.is_set():
                stalled.set()
                c.sendall(piece[:13 + length // 2])
                print("stalled", time.time(), idx, begin, length // 2, flush=True)
                continue
            sent += length
        c.sendall(piece)


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(64)
threading.Thread(target=announce, daemon=True).start()
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
