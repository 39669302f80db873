"""A raw BitTorrent leech for measuring a seeder: downloads every block of FILE from one peer,
keeping DEPTH requests in flight, checks the bytes against FILE, prints the bytes, the seconds
from unchoke to the last block, and when those were (Unix time).

leech.py HOST PORT INFO_HASH_HEX FILE PIECE_LENGTH [DEPTH] [ID]
"""
import socket, struct, sys, time

host, port, ih_hex, path, piece_length = sys.argv[1:6]
depth = int(sys.argv[6]) if len(sys.argv) > 6 else 8
ident = int(sys.argv[7]) if len(sys.argv) > 7 else 0
port, piece_length = int(port), int(piece_length)
data = open(path, 'rb').read()
BLOCK = 16384


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError('closed')
        buf += chunk
    return bytes(buf)


blocks = []
for off in range(0, len(data), BLOCK):
    piece, begin = divmod(off, piece_length)
    blocks.append((piece, begin, min(BLOCK, len(data) - off)))

for attempt in range(40):  # the board closes a peer politely while its slots are full
    try:
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b'\x13BitTorrent protocol' + bytes(8) + bytes.fromhex(ih_hex)
                  + b'-PY0001-' + b'%012d' % ident)
        recv_exact(s, 68)
        break
    except (EOFError, OSError):
        time.sleep(0.25)
else:
    sys.exit('no slot')
s.sendall(struct.pack('>IB', 1, 2))  # interested
while True:  # wait for unchoke
    n = struct.unpack('>I', recv_exact(s, 4))[0]
    m = recv_exact(s, n) if n else b''
    if m and m[0] == 1:
        break
start = time.time()
sent = 0
got = 0
while got < len(blocks):
    while sent < len(blocks) and sent - got < depth:
        s.sendall(struct.pack('>IBIII', 13, 6, *blocks[sent]))
        sent += 1
    n = struct.unpack('>I', recv_exact(s, 4))[0]
    m = recv_exact(s, n) if n else b''
    if m and m[0] == 7:
        i, b = struct.unpack('>II', m[1:9])
        off = i * piece_length + b
        assert m[9:] == data[off:off + len(m) - 9], 'block %d/%d differs' % (i, b)
        got += 1
end = time.time()
s.close()
print('%d %.3f %.6f %.6f' % (len(data), end - start, start, end))
