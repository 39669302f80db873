"""Link probes for the fidelity check, run inside the namespaces.

    probe.py serve PORT                  TCP echo (1-byte ping-pong) / sink, and UDP counter
    probe.py rtt HOST PORT N             N TCP connects and N 1-byte echoes: median ms of each
    probe.py bulk HOST PORT SECONDS      send for SECONDS: prints receiver-side bytes/s, whole run
                                         and after the first second
    probe.py loss HOST PORT N RATE       N UDP datagrams of 1000 bytes at RATE per second: lost %
Results are one JSON line on stdout.
"""
import json
import socket
import statistics
import sys
import threading
import time


def serve(port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    counts = {}

    def udp():
        while True:
            data, peer = u.recvfrom(2048)
            tag = data[:8]
            if data[8:12] == b"DONE":
                u.sendto(str(counts.pop(tag, 0)).encode(), peer)
            else:
                counts[tag] = counts.get(tag, 0) + 1

    threading.Thread(target=udp, daemon=True).start()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=conn, args=(c,), daemon=True).start()


def conn(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    mode = c.recv(1)
    if mode == b"E":  # echo one byte at a time
        while (b := c.recv(1)):
            c.sendall(b)
    elif mode == b"S":  # sink: report bytes received, per arrival time
        t0 = time.time()
        total, after1 = 0, 0
        t1 = None
        while (b := c.recv(1 << 20)):
            total += len(b)
            now = time.time()
            if now - t0 >= 1.0:
                if t1 is None:
                    t1 = now
                else:
                    after1 += len(b)
        t = time.time()
        c.sendall(json.dumps({"bytes": total, "secs": t - t0,
                              "rate_after_1s": after1 / (t - t1) if t1 else 0}).encode())
    c.close()


def rtt(host, port, n):
    connects, echoes = [], []
    for _ in range(n):
        s = socket.socket()
        t = time.perf_counter()
        s.connect((host, port))
        connects.append((time.perf_counter() - t) * 1000)
        s.close()
        time.sleep(0.01)
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"E")
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(b"x")
        s.recv(1)
        echoes.append((time.perf_counter() - t) * 1000)
    s.close()
    return {"connect_ms": statistics.median(connects), "echo_ms": statistics.median(echoes),
            "echo_min_ms": min(echoes), "echo_max_ms": max(echoes)}


def bulk(host, port, secs):
    s = socket.create_connection((host, port))
    s.sendall(b"S")
    buf = b"\0" * (1 << 16)
    t0 = time.time()
    while time.time() - t0 < secs:
        s.sendall(buf)
    s.shutdown(socket.SHUT_WR)
    r = json.loads(s.recv(4096))
    r["rate"] = r["bytes"] / r["secs"]
    return r


def loss(host, port, n, rate):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tag = ("%08d" % (time.time_ns() % 10**8)).encode()
    t0 = time.time()
    for k in range(n):
        u.sendto(tag + b"." * 992, (host, port))
        while time.time() < t0 + (k + 1) / rate:
            time.sleep(0.0005)
    time.sleep(1.0)  # let the delayed ones arrive
    u.settimeout(2)
    for _ in range(5):
        u.sendto(tag + b"DONE", (host, port))
        try:
            got = int(u.recv(64))
            break
        except socket.timeout:
            continue
    return {"sent": n, "received": got, "loss_pct": 100.0 * (n - got) / n}


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(int(sys.argv[2]))
    elif cmd == "rtt":
        print(json.dumps(rtt(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    elif cmd == "bulk":
        print(json.dumps(bulk(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))
    elif cmd == "loss":
        print(json.dumps(loss(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))))
