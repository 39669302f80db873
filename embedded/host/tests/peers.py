"""Raw BitTorrent peers against the board seeder: slots, refusal, garbage.

peers.py HOST PORT TORRENT_INFO_HASH_HEX FILE PIECE_LENGTH
Checks, printing one line each and exiting non-zero at the first failure:
  - four peers handshake and hold every slot; a fifth is closed without a handshake;
  - once one of the four leaves, a new peer is served a block byte-identical to FILE;
  - hostile peers, one after another, while an honest peer downloads the whole file over and
    over beside them (each round byte-identical, and a round completes after each one): garbage,
    a handshake for another torrent, a request past the end, a request of 1 MiB, a message
    whose length prefix says 1 MiB: each is closed. A peer that requests and never reads holds
    its slot meanwhile, and the honest peer keeps being served.
"""
import socket, struct, sys, threading, time

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



def closed(s, timeout=5):
    """True when the board closes s (FIN or reset) within timeout, whatever it sent before."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Honest(threading.Thread):
    """Downloads the whole file again and again, one block request at a time, until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.rounds, self.error, self.stopped = 0, None, threading.Event()

    def run(self):
        try:
            s = peer(6)
            blocks = [(i, b, min(16384, min(piece_length, len(data) - i * piece_length) - b))
                      for i in range((len(data) + piece_length - 1) // piece_length)
                      for b in range(0, min(piece_length, len(data) - i * piece_length), 16384)]
            while not self.stopped.is_set():
                for index, begin, length in blocks:
                    check_block(s, index, begin, length)
                self.rounds += 1
            s.close()
        except Exception as e:  # reported by the main thread
            self.error = e

    def another_round(self):
        """Wait until a whole download completes from now on."""
        start = self.rounds
        deadline = time.time() + 60
        while self.rounds < start + 2 and self.error is None and time.time() < deadline:
            time.sleep(0.02)
        assert self.error is None, 'the honest peer failed: %r' % self.error
        assert self.rounds >= start + 2, 'the honest peer is not served any more'


honest = Honest()
honest.start()
honest.another_round()

# Requests the whole file, never reads; its receive buffer is tiny, so its socket fills at once.
mute = socket.socket()
mute.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
mute.settimeout(5)
mute.connect((host, port))
mute.sendall(handshake(7) + struct.pack('>IB', 1, 2) + b''.join(
    struct.pack('>IBIII', 13, 6, i, 0, 16384) for i in range(len(data) // piece_length)) * 4)
honest.another_round()
print('ok: a peer that never reads holds its slot; the honest peer is still served')

bad = socket.create_connection((host, port), timeout=5)
bad.sendall(b'GET / HTTP/1.1\r\n\r\n' + bytes(range(256)) * 4)
assert closed_without_handshake(bad), 'a garbage peer was not closed'
honest.another_round()
print('ok: a peer sending garbage is closed; the honest peer is still served')

other = socket.create_connection((host, port), timeout=5)
other.sendall(PSTR + bytes(8) + bytes(20 - len(info_hash)) + bytes(reversed(info_hash)) + b'-PY0001-000000000008')
assert closed_without_handshake(other), 'a peer of another torrent was not closed'
honest.another_round()
print('ok: a handshake for another torrent is closed; the honest peer is still served')

pieces = (len(data) + piece_length - 1) // piece_length
hostile = [
    ('a request past the end', struct.pack('>IBIII', 13, 6, pieces - 1, len(data) - (pieces - 1) * piece_length, 16384)),
    ('a request of 1 MiB', struct.pack('>IBIII', 13, 6, 0, 0, 1 << 20)),
    ('a message of 1 MiB', struct.pack('>IB', 1 << 20, 7) + bytes(1000)),
]
for what, wire in hostile:
    s = peer(8)
    s.sendall(struct.pack('>IB', 1, 2) + wire)
    assert closed(s), '%s was not closed' % what
    honest.another_round()
    print('ok: %s is closed; the honest peer is still served' % what)

honest.another_round()
print('ok: the peer that never reads still does not block the honest one')
mute.close()
honest.stopped.set()
honest.join(30)
assert honest.error is None, 'the honest peer failed: %r' % honest.error
print('ok: the honest peer downloaded the whole file %d times beside them, byte-identical' % honest.rounds)
