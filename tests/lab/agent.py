"""One peer of a lab swarm, run inside its namespace: starts the client and speaks for it.

    agent.py KIND ROLE TORRENT DIR ADDR [--data FILE] [--enjambre BIN]
      KIND: enjambre | libtorrent      ROLE: seed | leech
Prints JSON lines on stdout, the same for every client:
  {"ev":"status","t":UNIX,"have":PIECES,"pieces":N,"up":B,"down":B,"wasted":B|null}  about twice a second
  {"ev":"done","t":UNIX}                                         once, when a leech has every piece
  {"ev":"final","cpu_s":S,"rss_kib":K,"up":B,"down":B,"wasted":B|null}  on SIGTERM, then exits
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
a = ap.parse_args()
PORT = 6881
state = {"have": 0, "pieces": 0, "up": 0, "down": 0, "wasted": None}
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
    else:
        cmd += ["get", a.torrent, "-o", a.dir, "--seed", "--wait"]
    cmd += ["--listen", a.addr, "--port", str(PORT), "--json", "--max-peers", "80"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(f"{a.dir}.stderr", "w"),
                             text=True)
    for line in child.stdout:
        try:
            m = json.loads(line)
        except ValueError:
            continue
        ty = m.get("type")
        with lock:
            if ty == "progress":
                state.update(have=m["pieces_have"], pieces=m["piece_count"], up=m["uploaded"],
                             down=m["downloaded"], wasted=m.get("wasted"))
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
    })
    params = {"ti": lt.torrent_info(a.torrent), "save_path": a.dir if a.role == "leech"
              else os.path.dirname(a.data)}
    if a.role == "seed":
        params["flags"] = lt.torrent_flags.seed_mode
    h = ses.add_torrent(params)
    n = h.torrent_file().num_pieces()
    while True:
        st = h.status()
        with lock:
            state.update(have=st.num_pieces, pieces=n, up=st.total_payload_upload,
                         down=st.total_payload_download,
                         wasted=st.total_redundant_bytes + st.total_failed_bytes)
        if st.is_seeding:
            mark_done()
        time.sleep(0.2)


def stop(*_):
    pid = child.pid if child else os.getpid()
    cpu, rss = proc_usage(pid)
    with lock:
        final = {"ev": "final", "cpu_s": cpu, "rss_kib": rss, **{k: state[k] for k in
                                                                ("up", "down", "wasted")}}
    emit(final)
    if child:
        child.terminate()
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
os.makedirs(a.dir, exist_ok=True)
target = {"enjambre": run_enjambre, "libtorrent": run_libtorrent}[a.kind]
threading.Thread(target=target, daemon=True).start()
while True:
    time.sleep(0.5)
    with lock:
        emit({"ev": "status", "t": time.time(), **state})
