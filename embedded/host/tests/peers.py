"""Raw BitTorrent peers against the board seeder: slots, refusal, garbage.

peers.py HOST PORT TORRENT_INFO_HASH_HEX FILE PIECE_LENGTH
Checks, printing one line each and exiting non-zero at the first failure:
  - four peers handshake and hold every slot; a fifth is closed without a handshake;
  - once one of the four leaves, a new peer is served a block byte-identical to FILE;
  - a peer sending garbage is closed while another peer keeps being served.
"""
import socket, struct, sys, time

host, port, ih_hex, path, piece_length = sys.argv[1:6]
port, piece_length = int(port), int(piece_length)
info_hash = bytes.fromhex(ih_hex)
data = open(path, 'rb').read()
PSTR = b'\x13BitTorrent protocol'


def handshake(n):
    reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x04])  # extended + fast
    return PSTR + reserved + info_hash + b'-PY0001-' + b'%012d' % n


def recv_exact(s, n):
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError('closed after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return buf


def message(s):
    length = struct.unpack('>I', recv_exact(s, 4))[0]
    return recv_exact(s, length) if length else b''


def peer(n):
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(handshake(n))
    reply = recv_exact(s, 68)
    assert reply[28:48] == info_hash, 'handshake for another torrent'
    return s


def closed_without_handshake(s):
    """True when the board closes s (FIN or reset) before sending anything."""
    try:
        return s.recv(68) == b''
    except (ConnectionResetError, socket.timeout):
        return False if isinstance(sys.exc_info()[1], socket.timeout) else True


def fetch_block(s, index, begin, length):
    s.sendall(struct.pack('>IB', 1, 2))  # interested
    s.sendall(struct.pack('>IBIII', 13, 6, index, begin, length))
    deadline = time.time() + 10
    while time.time() < deadline:
        m = message(s)
        if m and m[0] == 7:
            i, b = struct.unpack('>II', m[1:9])
            assert (i, b) == (index, begin), 'piece %d/%d, wanted %d/%d' % (i, b, index, begin)
            return m[9:]
    raise TimeoutError('no block')


def check_block(s, index, begin, length):
    got = fetch_block(s, index, begin, length)
    start = index * piece_length + begin
    assert got == data[start:start + length], 'block %d/%d differs' % (index, begin)


holders = [peer(i) for i in range(4)]
print('ok: four peers hold the four slots')
fifth = socket.create_connection((host, port), timeout=5)
fifth.sendall(handshake(4))
assert closed_without_handshake(fifth), 'a fifth peer was not closed'
print('ok: a fifth peer is closed without a handshake')
check_block(holders[1], 0, 0, 16384)
print('ok: the four are still served')
holders[0].close()
late = None
for attempt in range(20):
    time.sleep(0.5)
    try:
        late = peer(5)
        break
    except (EOFError, OSError):  # refused or closed while every socket is busy
        continue
assert late is not None, 'no slot freed for a later peer'
last = len(data) // piece_length
check_block(late, last, 0, min(16384, len(data) - last * piece_length))
print('ok: a later peer is served once a slot frees (attempt %d)' % (attempt + 1))
for s in holders[1:]:
    s.close()
late.close()
time.sleep(1)

good = peer(6)
bad = socket.create_connection((host, port), timeout=5)
bad.sendall(b'GET / HTTP/1.1\r\n\r\n' + bytes(range(256)) * 4)
assert closed_without_handshake(bad), 'a garbage peer was not closed'
print('ok: a peer sending garbage is closed')
check_block(good, 1, 16384 % piece_length, 16384)
print('ok: the good peer is still served')
good.close()
