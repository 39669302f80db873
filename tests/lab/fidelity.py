"""Fidelity of the emulated links: round trip, rate and loss, measured against what is configured.

Two nodes (a client and a server) are connected through the hub; the client's link carries the
setting under test, the server's link is left open (no rate, no delay, no loss) unless said.
Rate: wirefilter counts Ethernet frames (1514 bytes for 1448 bytes of TCP payload with
timestamps), so TCP goodput can reach at most 95.6 % of the configured rate; both the goodput and
its frame-level equivalent are shown.
"""
import json
import math
import subprocess
import time

import labnet

PY = "/usr/bin/python3"
FRAME = 1514 / 1448


def probe(args):
    r = subprocess.run(labnet.in_ns(0, PY, f"{labnet_dir()}/probe.py", *args), capture_output=True,
                       text=True, timeout=120)
    return json.loads(r.stdout)


def labnet_dir():
    import os
    return os.path.dirname(os.path.abspath(__file__))


def with_link(link, fn, server_link=None):
    net = labnet.Net([link, server_link or {}]).up()
    srv = subprocess.Popen(labnet.in_ns(1, PY, f"{labnet_dir()}/probe.py", "serve", "9000"))
    time.sleep(0.4)
    try:
        return fn()
    finally:
        srv.kill()
        srv.wait()
        net.down()


def run(out):
    rows = []
    ip = labnet.addr(1)
    # One-way delays (client link, server link), both directions: RTT = 2 (dc + ds). (0, 0) is the
    # emulator's own forwarding time; (10, 10) is scenario 1's path between two peers.
    for dc, ds in ((0, 0), (10, 0), (50, 0), (300, 0), (10, 10), (25, 25)):
        r = with_link({"delay_ms": dc}, lambda: probe(["rtt", ip, "9000", "20"]), {"delay_ms": ds})
        c = 2 * (dc + ds)
        rows.append({"check": "rtt", "configured_ms": c, "client_link_ms": dc, "server_link_ms": ds,
                     **{k: round(v, 3) for k, v in r.items()}, "excess_ms": round(r["echo_ms"] - c, 3),
                     "ok": abs(r["echo_ms"] - c) <= 1.0})
    for rate, secs in ((2_500_000, 8), (12_500_000, 8), (50_000_000, 6), (125_000_000, 6)):
        r = with_link({"up_rate": rate, "delay_ms": 1}, lambda: probe(["bulk", ip, "9000", str(secs)]))
        good = r["rate_after_1s"]
        rows.append({"check": "rate", "configured": rate, "goodput": round(good),
                     "goodput_pct": round(100 * good / rate, 1),
                     "frame_pct": round(100 * good * FRAME / rate, 1),
                     "ok": good * FRAME >= 0.95 * rate})
    # Scenario 5b's path (both links 1.25 MB/s, 150 ms each way: 600 ms RTT): what one plain TCP
    # flow reaches there is the ceiling for any client on it.
    sat = {"rate": 1_250_000, "delay_ms": 150}
    r = with_link(sat, lambda: probe(["bulk", ip, "9000", "30"]), dict(sat))
    rows.append({"check": "rate, 600 ms path", "configured": 1_250_000, "goodput": round(r["rate"]),
                 "goodput_pct": round(100 * r["rate"] / 1_250_000, 1),
                 "frame_pct": round(100 * r["rate"] * FRAME / 1_250_000, 1),
                 "ok": r["rate"] * FRAME >= 0.95 * 1_250_000})
    for loss in (1.0, 5.0):
        n = 5000
        r = with_link({"up_loss": loss}, lambda: probe(["loss", ip, "9000", str(n), "1000"]))
        sd = 100 * math.sqrt(loss / 100 * (1 - loss / 100) / n)
        rows.append({"check": "loss", "configured_pct": loss, **r, "binomial_2sd_pct": round(2 * sd, 2),
                     "ok": abs(r["loss_pct"] - loss) <= 2 * sd})
    with open(f"{out}/fidelity.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    for r in rows:
        print("fidelity", json.dumps(r), flush=True)
    return rows
