#!/usr/bin/env python3
"""Time from a magnet link to the first payload byte, and to the whole file: enjambre,
libtorrent and aria2 in the same run, on the same local swarm, tracker only (`tr=`), or with
`--dht` DHT only (a link with no `tr=`; every client knows only one libtorrent DHT node, where
the relay's address is announced, and each starts its own node afresh).

One `enjambre tracker` and one `enjambre seed` of a 64 MiB file on loopback. The seed is
reached through a relay of this script, which is the only peer the tracker lists: it times the
first `piece` message the seed sends to each leech (so every client is timed at the same place,
from the moment its command starts). Each leech starts with an empty directory and only the
magnet link. A benchmark: it prints, it does not judge.

    native/benches/magnet-first-byte.py [RUNS] [--dht]   (after `cargo build --release -p enjambre`)
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ENJAMBRE_BIN", os.path.join(ROOT, "target/release/enjambre"))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
DHT = "--dht" in sys.argv[1:]
RUNS = int(ARGS[0]) if ARGS else 3
SIZE = 64 << 20

LT_SCRIPT = r"""
import sys, time, libtorrent as lt
uri, save, iface = sys.argv[1:4]
dht = sys.argv[4] if len(sys.argv) > 4 else ''
s = lt.session({'listen_interfaces': iface, 'enable_dht': bool(dht), 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0,
                'dht_bootstrap_nodes': dht, 'dht_restrict_routing_ips': False,
                'dht_restrict_search_ips': False, 'dht_enforce_node_id': False,
                'dht_ignore_dark_internet': False, 'dht_prefer_verified_node_ids': False})
p = lt.parse_magnet_uri(uri)
p.save_path = save
h = s.add_torrent(p)
while not h.status().is_seeding:
    time.sleep(0.01)
print('done', flush=True)
"""

# The DHT's one node (libtorrent; the DHT's first), where the relay's port is announced every
# second by hand (two KRPC queries: `get_peers` for a token, then `announce_peer`), from
# 127.0.0.1 like the relay.
DHT_HUB = r"""
import os, re, socket, sys, time, libtorrent as lt
hub_iface, info_hash, port = sys.argv[1:4]
hub = lt.session({'enable_dht': True, 'enable_lsd': False, 'enable_upnp': False,
                  'enable_natpmp': False, 'dht_restrict_routing_ips': False,
                  'dht_restrict_search_ips': False, 'dht_enforce_node_id': False,
                  'dht_ignore_dark_internet': False, 'dht_prefer_verified_node_ids': False,
                  'alert_mask': 0, 'listen_interfaces': hub_iface, 'dht_bootstrap_nodes': ''})
host, hub_port = hub_iface.rsplit(':', 1)
to = (host, int(hub_port))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(('127.0.0.1', 0))
u.settimeout(1)
me, ih = os.urandom(20), bytes.fromhex(info_hash)
while True:
    try:
        u.sendto(b'd1:ad2:id20:' + me + b'9:info_hash20:' + ih
                 + b'e1:q9:get_peers1:t2:gp1:y1:qe', to)
        r = u.recv(1500)
        m = re.search(rb'5:token(\d+):', r)
        if m:
            token = r[m.end():m.end() + int(m.group(1))]
            u.sendto(b'd1:ad2:id20:' + me + b'9:info_hash20:' + ih + b'4:porti' + port.encode()
                     + b'e5:token' + str(len(token)).encode() + b':' + token
                     + b'e1:q13:announce_peer1:t2:ap1:y1:qe', to)
            u.recv(1500)
    except OSError:
        pass
    time.sleep(1)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """A TCP relay in front of the seed that notes when the first `piece` message of each
    connection passes, seed to leech."""

    def __init__(self, seed_port):
        self.seed_port = seed_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.first_piece = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            try:
                s = socket.create_connection(("127.0.0.1", self.seed_port))
            except OSError:
                c.close()
                continue
            threading.Thread(target=self.pipe, args=(c, s, False), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c, True), daemon=True).start()

    def pipe(self, src, dst, watch):
        # Seed to leech: the 68-byte handshake, then length-prefixed messages.
        buf, skip, seen = b"", 68, False
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                if watch and not seen:
                    buf += data
                    while not seen:
                        if skip:
                            n = min(skip, len(buf))
                            buf, skip = buf[n:], skip - n
                            if skip:
                                break
                        if len(buf) < 5:
                            break
                        length = int.from_bytes(buf[:4], "big")
                        if length and buf[4] == 7:
                            with self.lock:
                                self.first_piece.append(time.monotonic())
                            seen = True
                            break
                        skip = 4 + length
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def first_since(self, t0):
        with self.lock:
            later = [t for t in self.first_piece if t >= t0]
        return min(later) if later else None


def announce(tracker_port, info_hash_hex, port):
    ih = "".join("%" + info_hash_hex[i:i + 2] for i in range(0, 40, 2))
    url = (f"http://127.0.0.1:{tracker_port}/announce?info_hash={ih}&peer_id=-RL0001-123456789012"
           f"&port={port}&uploaded=0&downloaded=0&left=0&event=started&compact=1")
    urllib.request.urlopen(url, timeout=5).read()


def leech(client, link, out, ip, hub=None):
    """Start `client` on `link`; with `hub` (HOST:PORT), its DHT joins through that node only."""
    port = free_port()
    env = dict(os.environ)
    if client == "enjambre":
        cmd = [BIN, "get", link, "-o", out, "--listen", ip, "--port", str(port), "-q"]
        if hub:
            # A fresh state directory: no routing table saved by an earlier run.
            env["XDG_STATE_HOME"] = os.path.join(out, ".state")
            env.pop("ENJAMBRE_NO_DHT", None)
            cmd += ["--dht-bootstrap", hub]
        else:
            cmd += ["--no-dht"]
    elif client == "libtorrent":
        cmd = ["/usr/bin/python3", "-c", LT_SCRIPT, link, out, f"{ip}:{port}", hub or ""]
    else:
        dht = ["--enable-dht=false"]
        if hub:
            dht = ["--enable-dht=true", f"--dht-listen-port={free_port()}",
                   f"--dht-entry-point={hub}",
                   f"--dht-file-path={os.path.join(out, '.aria2-dht.dat')}"]
        cmd = ["aria2c", "-d", out, *dht, "--bt-enable-lpd=false",
               "--enable-peer-exchange=false", "--seed-time=0", "--summary-interval=0",
               "--console-log-level=error", f"--listen-port={port}", "--bt-save-metadata=false",
               "--follow-torrent=mem", link]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def main():
    work = tempfile.mkdtemp(prefix="enjambre-magnet-bench-")
    procs = []
    try:
        data = os.path.join(work, "magnet-bench.bin")
        with open(data, "wb") as f:
            f.write(random.Random(7).randbytes(SIZE))
        tp = free_port()
        listed = os.path.join(work, "listed.torrent")
        bare = os.path.join(work, "bare.torrent")
        subprocess.run([BIN, "create", data, "-o", listed, "--piece-length", "262144",
                        "--tracker", f"http://127.0.0.1:{tp}/announce"], check=True,
                       capture_output=True)
        # The seed announces nowhere: only the relay is listed.
        subprocess.run([BIN, "create", data, "-o", bare, "--piece-length", "262144"],
                       check=True, capture_output=True)
        info = subprocess.run([BIN, "info", listed, "--json"], check=True, capture_output=True)
        import json
        ih = json.loads(info.stdout)["info_hash"]
        procs.append(subprocess.Popen([BIN, "tracker", "--listen", f"127.0.0.1:{tp}",
                                       "--poll-interval", "0"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        sp = free_port()
        procs.append(subprocess.Popen([BIN, "seed", bare, "--data", data, "--listen", "127.0.0.1",
                                       "--port", str(sp), "-q", "--no-dht"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        time.sleep(1.5)
        relay = Relay(sp)
        hub = None
        if DHT:
            hub = f"127.0.0.1:{free_port()}"
            procs.append(subprocess.Popen(["/usr/bin/python3", "-c", DHT_HUB, hub, ih,
                                           str(relay.port)]))
            time.sleep(3)
            link = f"magnet:?xt=urn:btih:{ih}"
        else:
            announce(tp, ih, relay.port)
            link = f"magnet:?xt=urn:btih:{ih}&tr=http%3A%2F%2F127.0.0.1%3A{tp}%2Fannounce"
        clients = ["enjambre", "libtorrent", "aria2"]
        if shutil.which("aria2c") is None:
            clients.remove("aria2")
        results = {c: [] for c in clients}
        for run in range(RUNS):
            for i, client in enumerate(clients):
                out = tempfile.mkdtemp(dir=work)
                ip = f"127.0.{run + 10}.{i + 2}"
                t0 = time.monotonic()
                p = leech(client, link, out, ip, hub)
                try:
                    p.wait(timeout=120)
                    done = time.monotonic()
                except subprocess.TimeoutExpired:
                    p.kill()
                    done = None
                first = relay.first_since(t0)
                results[client].append((first and first - t0, done and done - t0))
                time.sleep(0.5)
        how = ("no tr=, DHT only (one libtorrent node)" if DHT
               else "only tr= (our tracker)")
        print(f"\n64 MiB, 256 KiB pieces, magnet link with {how}, one enjambre "
              f"seed, loopback, {time.strftime('%Y-%m-%d %H:%M')}, {RUNS} runs each")
        print("| client | to the first payload byte (s) | to the whole file (s) |")
        print("|---|---|---|")
        for client, rs in results.items():
            firsts = " / ".join("-" if f is None else f"{f:.3f}" for f, _ in rs)
            wholes = " / ".join("-" if d is None else f"{d:.2f}" for _, d in rs)
            print(f"| {client} | {firsts} | {wholes} |")
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
