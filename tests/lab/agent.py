"""One peer of a lab swarm, run inside its namespace: starts the client and speaks for it.

    agent.py KIND ROLE TORRENT DIR ADDR [--data FILE] [--enjambre BIN]
      KIND: enjambre | libtorrent | transmission | aria2 | stall     ROLE: seed | leech
Prints JSON lines on stdout, the same for every client:
  {"ev":"status","t":UNIX,"have":PIECES,"pieces":N,"up":B,"down":B,"wasted":B|null}  about twice a second
  {"ev":"done","t":UNIX}                                         once, when a leech has every piece
  {"ev":"final","cpu_s":S,"rss_kib":K,"up":B,"down":B,"wasted":B|null,"waste":{CAUSE:B|null}|null}
      on SIGTERM, then exits (waste by cause: enjambre duplicate/unrequested/corrupt,
      libtorrent redundant as duplicate and failed as corrupt)
A leech keeps seeding after it completes until SIGTERM. CPU seconds and peak RSS come from the
client's /proc entry just before it is stopped.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("kind")
ap.add_argument("role")
ap.add_argument("torrent")
ap.add_argument("dir")
ap.add_argument("addr")
ap.add_argument("--data")
ap.add_argument("--enjambre", default="enjambre")
ap.add_argument("--stall-after", type=int, default=1 << 20)
# Super-seed (BEP 16) where the client can: enjambre and libtorrent.
ap.add_argument("--super-seed", action="store_true")
# The user's upload limit, bytes per second (each client's own setting), or none.
ap.add_argument("--max-upload-rate", type=int)
a = ap.parse_args()
PORT = 6881
# enjambre's wasted bytes by cause (its progress lines' `wasted_<cause>`).
WASTE = ("duplicate", "unrequested", "corrupt")
state = {"have": 0, "pieces": 0, "up": 0, "down": 0, "wasted": None, "waste": None}
lock = threading.Lock()
out_lock = threading.Lock()
done_said = False
child = None


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def proc_usage(pid):
    """CPU seconds (user + system, with waited-for children) and peak RSS of a live process."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        cpu = sum(int(x) for x in f[11:15]) / tck
        rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
        return cpu, rss
    except (OSError, StopIteration):
        return None, None


def mark_done():
    global done_said
    if not done_said and a.role == "leech":
        done_said = True
        emit({"ev": "done", "t": time.time()})


def run_enjambre():
    global child
    cmd = [a.enjambre]
    if a.role == "seed":
        cmd += ["seed", a.torrent, "--data", a.data]
        cmd += ["--super-seed"] if a.super_seed else []
    else:
        cmd += ["get", a.torrent, "-o", a.dir, "--seed", "--wait"]
    # The lab's swarm is its tracker's: no DHT (it could only look for public routers).
    cmd += ["--listen", a.addr, "--port", str(PORT), "--json", "--json-peers", "--max-peers", "80", "--no-dht"]
    cmd += ["--max-upload-rate", str(a.max_upload_rate)] if a.max_upload_rate else []
    # More options for every enjambre peer, for a comparison (e.g. --no-auto-upload-limit).
    cmd += os.environ.get("LAB_ENJAMBRE_ARGS", "").split()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(f"{a.dir}.stderr", "w"),
                             text=True)
    # Every line the peer printed, for a look at a run afterwards.
    log = open(f"{a.dir}.jsonl", "w")
    for line in child.stdout:
        log.write(line)
        try:
            m = json.loads(line)
        except ValueError:
            continue
        ty = m.get("type")
        with lock:
            if ty == "progress":
                state.update(have=m["pieces_have"], pieces=m["piece_count"], up=m["uploaded"],
                             down=m["downloaded"], wasted=m.get("wasted"),
                             waste={k: m.get(f"wasted_{k}") for k in WASTE})
            elif ty == "finished":
                state.update(up=m["uploaded"], down=m["downloaded"])
        if ty == "completed":
            mark_done()


def run_libtorrent():
    global child
    import libtorrent as lt
    child = None
    ses = lt.session({
        "listen_interfaces": f"{a.addr}:{PORT}", "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False,
        # TCP only, as enjambre: the same transport on the same links.
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "announce_to_all_trackers": True, "alert_mask": 0,
        "upload_rate_limit": a.max_upload_rate or 0,
    })
    if a.max_upload_rate:
        # libtorrent exempts peers on private addresses (the lab's) from rate limits: not here.
        every = lt.ip_filter()
        every.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        ses.set_peer_class_filter(every)
    params = {"ti": lt.torrent_info(a.torrent), "save_path": a.dir if a.role == "leech"
              else os.path.dirname(a.data)}
    if a.role == "seed":
        params["flags"] = lt.torrent_flags.seed_mode
        if a.super_seed:
            params["flags"] |= lt.torrent_flags.super_seeding
    h = ses.add_torrent(params)
    n = h.torrent_file().num_pieces()
    while True:
        st = h.status()
        with lock:
            state.update(have=st.num_pieces, pieces=n, up=st.total_payload_upload,
                         down=st.total_payload_download,
                         wasted=st.total_redundant_bytes + st.total_failed_bytes,
                         waste={"duplicate": st.total_redundant_bytes, "unrequested": None,
                                "corrupt": st.total_failed_bytes})
        if st.is_seeding:
            mark_done()
        time.sleep(0.2)


def rpc(url, body, headers):
    import urllib.error
    import urllib.request
    for _ in range(2):
        req = urllib.request.Request(url, json.dumps(body).encode(), headers)
        try:
            return json.loads(urllib.request.urlopen(req, timeout=5).read())
        except urllib.error.HTTPError as e:  # Transmission's session-id handshake
            if e.code != 409:
                raise
            headers["X-Transmission-Session-Id"] = e.headers["X-Transmission-Session-Id"]
    raise OSError("rpc refused")


def run_transmission():
    global child
    home = f"{a.dir}.transmission"
    os.makedirs(home, exist_ok=True)
    save = a.dir if a.role == "leech" else os.path.dirname(a.data)
    settings = {
        "rpc-enabled": True, "rpc-port": 9091, "rpc-bind-address": "127.0.0.1",
        "rpc-whitelist-enabled": False, "rpc-host-whitelist-enabled": False,
        "rpc-authentication-required": False, "peer-port": PORT, "peer-port-random-on-start": False,
        "bind-address-ipv4": a.addr, "dht-enabled": False, "lpd-enabled": False,
        "utp-enabled": False, "pex-enabled": False, "port-forwarding-enabled": False,
        "blocklist-enabled": False, "download-dir": save, "incomplete-dir-enabled": False,
        "rename-partial-files": False, "start-added-torrents": True, "watch-dir-enabled": False,
        "ratio-limit-enabled": False, "idle-seeding-limit-enabled": False,
        "speed-limit-down-enabled": False, "message-level": 1,
        "speed-limit-up-enabled": bool(a.max_upload_rate),
        "speed-limit-up": (a.max_upload_rate or 0) // 1000,  # kB/s
    }
    json.dump(settings, open(f"{home}/settings.json", "w"))
    child = subprocess.Popen(["transmission-daemon", "-f", "-g", home], stdout=subprocess.DEVNULL,
                             stderr=open(f"{a.dir}.stderr", "w"))
    url, hdr = "http://127.0.0.1:9091/transmission/rpc", {}
    for _ in range(100):
        try:
            rpc(url, {"method": "session-get"}, hdr)
            break
        except OSError:
            time.sleep(0.1)
    r = rpc(url, {"method": "torrent-add", "arguments": {"filename": a.torrent, "download-dir": save}},
            hdr)
    tid = (r["arguments"].get("torrent-added") or r["arguments"].get("torrent-duplicate"))["id"]
    fields = ["haveValid", "pieceCount", "pieceSize", "uploadedEver", "downloadedEver",
              "corruptEver", "leftUntilDone", "status"]
    while True:
        t = rpc(url, {"method": "torrent-get", "arguments": {"ids": [tid], "fields": fields}},
                hdr)["arguments"]["torrents"][0]
        with lock:
            state.update(have=t["haveValid"] // t["pieceSize"], pieces=t["pieceCount"],
                         up=t["uploadedEver"], down=t["downloadedEver"], wasted=t["corruptEver"])
        if t["leftUntilDone"] == 0 and t["status"] != 2:  # 2: checking
            state["have"] = t["pieceCount"]
            mark_done()
        time.sleep(0.3)


def run_aria2():
    global child
    save = a.dir if a.role == "leech" else os.path.dirname(a.data)
    child = subprocess.Popen([
        "aria2c", "--dir", save, "--enable-dht=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "--summary-interval=0", "--console-log-level=warn",
        "--file-allocation=none", "--seed-ratio=0.0", "--listen-port", str(PORT),
        "--bt-external-ip", a.addr, "--interface", a.addr, "--check-integrity=true",
        "--enable-rpc", "--rpc-listen-port", "6800", "--bt-max-peers", "80",
        f"--max-overall-upload-limit={a.max_upload_rate or 0}", a.torrent],
        stdout=subprocess.DEVNULL, stderr=open(f"{a.dir}.stderr", "w"))
    url = "http://127.0.0.1:6800/jsonrpc"
    while True:
        try:
            r = rpc(url, {"jsonrpc": "2.0", "id": 1, "method": "aria2.tellActive",
                          "params": [["completedLength", "totalLength", "uploadLength", "numPieces",
                                      "pieceLength", "seeder"]]}, {})
            t = r["result"][0]
            n = int(t["numPieces"])
            with lock:
                state.update(have=int(t["completedLength"]) * n // max(1, int(t["totalLength"])),
                             pieces=n, up=int(t["uploadLength"]), down=int(t["completedLength"]))
            if t.get("seeder") == "true":
                mark_done()
        except (OSError, IndexError, KeyError, ValueError):
            pass
        time.sleep(0.3)


def run_stall():
    global child
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.Popen([sys.executable, f"{here}/stall_peer.py", a.torrent, a.data, a.addr,
                              str(PORT), str(a.stall_after)], stdout=subprocess.PIPE, text=True)
    for line in child.stdout:
        w = line.split()
        with lock:
            if w[0] == "ready":
                state.update(have=1, pieces=1)
            elif w[0] == "stalled":
                state["stalled_at"] = float(w[1])


def stop(*_):
    pid = child.pid if child else os.getpid()
    cpu, rss = proc_usage(pid)
    with lock:
        final = {"ev": "final", "cpu_s": cpu, "rss_kib": rss, **{k: state[k] for k in
                                                                ("up", "down", "wasted", "waste")}}
    emit(final)
    if child:
        child.terminate()
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
os.makedirs(a.dir, exist_ok=True)
target = {"enjambre": run_enjambre, "libtorrent": run_libtorrent,
          "transmission": run_transmission, "aria2": run_aria2, "stall": run_stall}[a.kind]
threading.Thread(target=target, daemon=True).start()
while True:
    time.sleep(0.5)
    with lock:
        emit({"ev": "status", "t": time.time(), **state})
