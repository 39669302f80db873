"""A libtorrent peer for Enjambre's interoperability tests, driven by arguments.

    lt_client.py seed|leech TORRENT SAVE_DIR IFACE:PORT [--peer HOST:PORT]... [--download-limit B/s]
                 [--upload-limit B/s] [--num-want N] [--seconds S]

Prints `ready PORT`, then every 0.1 s a line
`status STATE NUM_PIECES PIECE_COUNT ALL_TIME_UPLOAD ALL_TIME_DOWNLOAD NUM_PEERS SEEDING` (payload
bytes since the torrent was added, across pauses),
and `done` once when a leech has every piece. Runs until killed, stdin closes, or --seconds pass.
Lines on stdin: `pause` (drop every connection, accept none) and `resume`.
DHT, local discovery, UPnP and NAT-PMP are off; several connections per IP are allowed.
"""
import argparse
import os
import sys
import threading
import time

import libtorrent as lt

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["seed", "leech"])
ap.add_argument("torrent")
ap.add_argument("save")
ap.add_argument("iface")
ap.add_argument("--peer", action="append", default=[])
ap.add_argument("--download-limit", type=int, default=0)
ap.add_argument("--upload-limit", type=int, default=0)
ap.add_argument("--num-want", type=int, default=None)
ap.add_argument("--seconds", type=float, default=300)
a = ap.parse_args()

settings = {
    "listen_interfaces": a.iface,
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "announce_to_all_trackers": True,
    "announce_to_all_tiers": True,
    "alert_mask": 0,
    "user_agent": "lt_client/" + lt.__version__,
}
if a.num_want is not None:
    settings["num_want"] = a.num_want
ses = lt.session(settings)
params = {"ti": lt.torrent_info(a.torrent), "save_path": a.save}
if a.mode == "seed":
    params["flags"] = lt.torrent_flags.seed_mode
h = ses.add_torrent(params)
if a.download_limit:
    h.set_download_limit(a.download_limit)
if a.upload_limit:
    h.set_upload_limit(a.upload_limit)
for p in a.peer:
    host, port = p.rsplit(":", 1)
    h.connect_peer((host, int(port)))

def commands():
    for line in sys.stdin:
        if line.strip() == "pause":
            h.pause()
        elif line.strip() == "resume":
            h.resume()
    # Leave when the test closes our stdin (it died or dropped us).
    os._exit(0)


threading.Thread(target=commands, daemon=True).start()

print("ready", ses.listen_port(), flush=True)
deadline = time.time() + a.seconds
said_done = False
while time.time() < deadline:
    st = h.status()
    print("status", st.state, st.num_pieces, h.torrent_file().num_pieces(), st.all_time_upload,
          st.all_time_download, st.num_peers, int(st.is_seeding), flush=True)
    if a.mode == "leech" and st.is_seeding and not said_done:
        print("done", flush=True)
        said_done = True
    time.sleep(0.1)
sys.exit(1)
