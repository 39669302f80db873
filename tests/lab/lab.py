"""The swarm laboratory: runs scenario files on a star of emulated links (see labnet.py).

    lab.py [--short] [--tracker ours|opentracker] [--clients K,K] [--out DIR] SCENARIO...
SCENARIO is a name in scenarios/ (without .toml) or a path; `fidelity` runs the link checks.
Writes DIR/results.jsonl, DIR/results.md and DIR/<scenario>.png.
"""
import argparse
import base64
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import labnet  # noqa: E402
import report  # noqa: E402

PY = "/usr/bin/python3"
TRACKER_PORT = 6969


def load(name, short):
    path = name if os.path.exists(name) else f"{HERE}/scenarios/{name}.toml"
    with open(path, "rb") as f:
        sc = tomllib.load(f)
    if short and "short" in sc:
        for k, v in sc.pop("short").items():
            if isinstance(v, dict):
                sc.setdefault(k, {}).update(v)
            else:
                sc[k] = v
    sc.setdefault("name", os.path.basename(path).removesuffix(".toml"))
    return sc


def plan(sc):
    """Nodes for a scenario: node 0 the tracker, then seeds, then leeches; each with its link,
    role, client kind slot, arrival and departure rule."""
    rng = random.Random(sc.get("rng_seed", 1))
    nodes = [{"role": "tracker", "link": {}}]
    s = sc["seed"]
    for _ in range(s.get("count", 1)):
        nodes.append({"role": "seed", "link": link_of(s, rng), "arrive": 0.0,
                      "kind": s.get("kind"), "leave_after_copies": s.get("leave_after_copies"),
                      "super_seed": s.get("super_seed", False)})
    st = sc.get("stall")
    for _ in range(st["count"] if st else 0):
        nodes.append({"role": "seed", "link": link_of(st, rng), "arrive": 0.0, "kind": "stall",
                      "stall_after": st.get("stall_after_bytes", 1 << 20)})
    lc = sc["leeches"]
    groups = lc.get("groups") or [{"fraction": 1.0, "kind": lc.get("kind")}]
    count = lc["count"]
    sizes = [round(g["fraction"] * count) for g in groups]
    sizes[-1] = count - sum(sizes[:-1])
    for g, n in zip(groups, sizes):
        for _ in range(n):
            spread = lc.get("arrive_spread_s", 0.0)
            nodes.append({"role": "leech", "link": link_of({**lc, **g}, rng),
                          "arrive": rng.uniform(0, spread) if spread else 0.0,
                          "leave_on_finish": lc.get("leave_on_finish", False),
                          "kind": g.get("kind"), "max_upload_rate": g.get("max_upload_rate")})
    ch = sc.get("churn")
    if ch:
        for _ in range(ch["arrivals"]):
            nodes.append({"role": "leech", "link": link_of(lc, rng),
                          "arrive": rng.uniform(ch["from_s"], ch["to_s"]),
                          "leave_on_finish": True, "kind": None})
    return nodes


def link_of(d, rng):
    keys = ("rate", "up_rate", "down_rate", "delay_ms", "jitter_ms", "loss", "queue")
    return {k: d[k] for k in keys if k in d}


def bound(nodes, size):
    """Kumar & Ross fluid lower bound on the time for every leech to finish (from the first
    leech's start)."""
    seeds = [n for n in nodes if n["role"] == "seed" and n.get("kind") != "stall"]
    leeches = [n for n in nodes if n["role"] == "leech"]
    up = lambda n: n["link"].get("up_rate", n["link"].get("rate", 1e12))
    down = lambda n: n["link"].get("down_rate", n["link"].get("rate", 1e12))
    u_s = sum(up(n) for n in seeds)
    d_min = min(down(n) for n in leeches)
    # With late arrivals (churn), no leech can finish before it arrives and downloads F at full rate.
    last = max(n["arrive"] + size / down(n) for n in leeches)
    return max(size / u_s, size / d_min, len(leeches) * size / (u_s + sum(up(n) for n in leeches)),
               last)


class Run:
    """One swarm of one client kind on an existing network."""

    def __init__(self, sc, nodes, kind, work, args):
        self.sc, self.nodes, self.kind, self.work, self.args = sc, nodes, kind, work, args
        self.agents, self.events, self.samples = {}, {}, []
        self.lock = threading.Lock()

    def start_agent(self, i):
        n = self.nodes[i]
        kind = n.get("kind") or self.kind
        role = n["role"]
        d = f"{self.work}/peer{i}"
        cmd = labnet.in_ns(i, PY, f"{HERE}/agent.py", kind, role, f"{self.work}/t.torrent", d,
                           labnet.addr(i), "--data", f"{self.work}/src/data.bin",
                           "--enjambre", self.args.enjambre,
                           "--stall-after", str(n.get("stall_after", 0)),
                           *(["--super-seed"] if n.get("super_seed") else []),
                           *(["--max-upload-rate", str(n["max_upload_rate"])]
                             if n.get("max_upload_rate") else []))
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
        ev = {"node": i, "role": role, "kind": kind, "start": time.time(), "done": None,
              "status": {}, "final": None, "left": None}
        self.agents[i], self.events[i] = p, ev
        threading.Thread(target=self.read, args=(p, ev), daemon=True).start()

    def read(self, p, ev):
        for line in p.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if m["ev"] == "status":
                    ev["status"] = m
                elif m["ev"] == "done":
                    ev["done"] = m["t"]
                elif m["ev"] == "final":
                    ev["final"] = m

    def stop_agent(self, i):
        p = self.agents[i]
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.events[i]["left"] = self.events[i]["left"] or time.time()

    def go(self):
        size = self.sc["file_mib"] << 20
        tr = start_tracker(self.args.tracker, self.work, self.ih)
        try:
            return self._go(size)
        finally:
            for i in list(self.agents):
                self.stop_agent(i)
            time.sleep(0.3)
            tr.terminate()
            tr.wait()

    def _go(self, size):
        # Seeds first, each checked and serving, before the clock starts for the leeches.
        seeds = [i for i, n in enumerate(self.nodes) if n["role"] == "seed"]
        for i in seeds:
            self.start_agent(i)
        deadline = time.time() + 120
        while time.time() < deadline and not all(
                self.events[i]["status"].get("pieces") and
                self.events[i]["status"]["have"] >= self.events[i]["status"]["pieces"] for i in seeds):
            time.sleep(0.1)
        # ... and known to the tracker (opentracker has no swarm API: a fixed wait).
        deadline = time.time() + 30
        while self.args.tracker == "ours" and time.time() < deadline:
            url = f"http://{labnet.addr(0)}:{TRACKER_PORT}/swarm/{self.ih}"
            out = subprocess.run(labnet.in_ns(0, "curl", "-s", "-m", "2", url), capture_output=True,
                                 text=True).stdout
            try:
                if json.loads(out).get("seeders", 0) >= len(seeds):
                    break
            except ValueError:
                pass
            time.sleep(0.2)
        else:
            time.sleep(3.0)
        t0 = time.time()
        pending = sorted((n["arrive"], i) for i, n in enumerate(self.nodes) if n["role"] == "leech")
        leeches = [i for i, n in enumerate(self.nodes) if n["role"] == "leech"]
        seed0 = next(i for i, n in enumerate(self.nodes) if n["role"] == "seed")
        timeout = self.sc.get("timeout_s", 600)
        # Give up early when no leech has gained a piece for this long (a swarm that cannot finish).
        idle_limit = self.sc.get("idle_timeout_s", 60)
        last_have, last_change = None, time.time()
        next_poll = 0.0
        while True:
            now = time.time() - t0
            while pending and pending[0][0] <= now:
                self.start_agent(pending.pop(0)[1])
            with self.lock:
                for i, ev in self.events.items():
                    n = self.nodes[i]
                    if ev["left"]:
                        continue
                    if n["role"] == "leech" and ev["done"] and n.get("leave_on_finish"):
                        threading.Thread(target=self.stop_agent, args=(i,), daemon=True).start()
                        ev["left"] = time.time()
                    c = n.get("leave_after_copies")
                    if c and ev["status"].get("up", 0) >= c * size:
                        threading.Thread(target=self.stop_agent, args=(i,), daemon=True).start()
                        ev["left"] = time.time()
                all_done = not pending and all(self.events.get(i, {}).get("done") for i in leeches)
                seed_up = self.events[seed0]["status"].get("up", 0) if seed0 in self.events else 0
            if now >= next_poll and self.args.tracker == "ours":
                next_poll = now + 2.0
                threading.Thread(target=self.poll_swarm, args=(now,), daemon=True).start()
            with self.lock:
                have = tuple(self.events[i]["status"].get("have", 0) for i in leeches if i in self.events)
            if have != last_have:
                last_have, last_change = have, time.time()
            if all_done or now > timeout or time.time() - last_change > idle_limit:
                break
            time.sleep(0.1)
        end = time.time()
        for i in list(self.agents):
            self.stop_agent(i)
        time.sleep(0.2)
        rows = []
        for i, ev in sorted(self.events.items()):
            f = ev["final"] or {}
            st = ev["status"]
            rows.append({
                "node": i, "role": ev["role"], "kind": ev["kind"], "addr": labnet.addr(i),
                "link": self.nodes[i]["link"], "arrive_s": round(ev["start"] - t0, 2),
                "completion_s": round(ev["done"] - ev["start"], 2) if ev["done"] else None,
                "up": f.get("up", st.get("up")), "down": f.get("down", st.get("down")),
                "wasted": f.get("wasted", st.get("wasted")), "waste": f.get("waste"),
                "cpu_s": f.get("cpu_s"),
                "rss_kib": f.get("rss_kib"),
                "stalled_at_s": round(st["stalled_at"] - t0, 3) if st.get("stalled_at") else None,
                "identical": self.identical(i) if ev["role"] == "leech" and ev["done"] else None,
            })
        done = [ev["done"] for i, ev in self.events.items() if ev["role"] == "leech" and ev["done"]]
        swarm = {
            "all_done_s": round(max(done) - t0, 2) if all_done else None,
            "completed": len(done), "leeches": len(leeches),
            "seed_copies": round((rows[seed0 - 1]["up"] or seed_up) / size, 3),
            "wall_s": round(end - t0, 2),
        }
        return swarm, rows

    def identical(self, i):
        got = f"{self.work}/peer{i}/data.bin"
        r = subprocess.run(["cmp", "-s", got, f"{self.work}/src/data.bin"])
        return r.returncode == 0

    def poll_swarm(self, now):
        try:
            url = f"http://{labnet.addr(0)}:{TRACKER_PORT}/swarm/{self.ih}"
            out = subprocess.run(labnet.in_ns(0, "curl", "-s", "-m", "2", url), capture_output=True,
                                 text=True).stdout
            self.samples.append((now, json.loads(out)))
            with open(f"{self.work}/swarm.jsonl", "a") as f:
                f.write(json.dumps({"t": now, "swarm": self.samples[-1][1]}) + "\n")
        except (ValueError, OSError):
            pass


def start_tracker(which, work, ih):
    a = f"{labnet.addr(0)}:{TRACKER_PORT}"
    if which == "opentracker":
        # Debian's opentracker is built with a whitelist: list the torrent (chrooted to work).
        with open(f"{work}/whitelist", "w") as f:
            f.write(f"{ih}\n")
        os.chmod(work, 0o755)
        cmd = ["opentracker", "-i", labnet.addr(0), "-p", str(TRACKER_PORT), "-P", str(TRACKER_PORT),
               "-w", "whitelist", "-u", "nobody", "-d", work]
    else:
        cmd = [ARGS.enjambre, "tracker", "--listen", a, "--interval", "10", "--min-interval", "2",
               "--poll-interval", "2", "--poll-grace", "1"]
    p = subprocess.Popen(labnet.in_ns(0, *cmd), stdout=open(f"{work}/tracker.log", "w"),
                         stderr=subprocess.STDOUT)
    time.sleep(0.5)
    return p


def availability(samples, pieces):
    """(t, min, mean) of piece copies among peers the tracker has a bitfield for."""
    out = []
    for t, sw in samples:
        counts = [0] * pieces
        for p in sw.get("peers", []):
            bf = p.get("bitfield")
            if p.get("have") == "all":
                counts = [c + 1 for c in counts]
            elif bf:
                try:
                    raw = base64.urlsafe_b64decode(bf + "=" * (-len(bf) % 4))
                except ValueError:
                    continue
                for k in range(pieces):
                    if k >> 3 < len(raw) and raw[k >> 3] >> (7 - (k & 7)) & 1:
                        counts[k] += 1
        out.append((t, min(counts), sum(counts) / pieces))
    return out


def prepare(sc, work):
    os.makedirs(f"{work}/src", exist_ok=True)
    size = sc["file_mib"] << 20
    src = f"{work}/src/data.bin"
    if not os.path.exists(src) or os.path.getsize(src) != size:
        rng = random.Random(sc.get("rng_seed", 1))
        with open(src, "wb") as f:
            for _ in range(sc["file_mib"]):
                f.write(rng.randbytes(1 << 20))
    subprocess.run([ARGS.enjambre, "create", src, "-o", f"{work}/t.torrent", "--force",
                    "--piece-length", str(sc.get("piece_kib", 256) * 1024), "--tracker",
                    f"http://{labnet.addr(0)}:{TRACKER_PORT}/announce"], check=True,
                   stdout=subprocess.DEVNULL)
    info = subprocess.run([PY, "-c", "import sys, libtorrent as lt; t = lt.torrent_info(sys.argv[1]);"
                           "print(t.info_hash(), t.num_pieces())", f"{work}/t.torrent"],
                          capture_output=True, text=True, check=True).stdout.split()
    return info[0], int(info[1])


def run_scenario(name, args, out):
    if name == "fidelity":
        import fidelity
        return fidelity.run(out)
    sc = load(name, args.short)
    nodes = plan(sc)
    size = sc["file_mib"] << 20
    b = bound(nodes, size)
    kinds = args.clients.split(",") if args.clients else sc.get("clients", ["enjambre"])
    print(f"== {sc['name']}: {len(nodes) - 1} peers, {sc['file_mib']} MiB, bound {b:.1f} s, "
          f"clients {kinds}", flush=True)
    net = labnet.Net([n["link"] for n in nodes]).up()
    results = []
    try:
        for kind in kinds:
            work = f"{args.out}/{sc['name']}/{kind}"
            subprocess.run(["rm", "-rf", work])
            ih, pieces = prepare(sc, work)
            run = Run(sc, nodes, kind, work, args)
            run.ih = ih
            swarm, rows = run.go()
            rec = {"scenario": sc["name"], "kind": kind, "bound_s": round(b, 2),
                   "file_bytes": size, "tracker": args.tracker, "swarm": swarm, "peers": rows,
                   "availability": availability(run.samples, pieces), "short": args.short}
            with open(f"{args.out}/results.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"   {kind}: all done {swarm['all_done_s']} s "
                  f"({swarm['completed']}/{swarm['leeches']}), seed copies {swarm['seed_copies']}",
                  flush=True)
            results.append(rec)
            subprocess.run(["rm", "-rf", f"{work}/src"] + [f"{work}/peer{i}" for i in range(len(nodes))])
    finally:
        net.down()
    report.plot(results, f"{args.out}/{sc['name']}.png")
    return results


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--tracker", default="ours", choices=["ours", "opentracker"])
    ap.add_argument("--clients")
    ap.add_argument("--out", default="/tmp/enjlab-out")
    ap.add_argument("--enjambre", default=os.path.abspath(f"{HERE}/../../target/release/enjambre"))
    ARGS = args = ap.parse_args()
    names = args.scenarios or ["fidelity"] + sorted(
        f.removesuffix(".toml") for f in os.listdir(f"{HERE}/scenarios"))
    os.makedirs(args.out, exist_ok=True)

    def bye(*_):
        labnet.teardown()
        sys.exit(130)

    signal.signal(signal.SIGINT, bye)
    signal.signal(signal.SIGTERM, bye)
    ok = True
    try:
        for name in names:
            res = run_scenario(name, args, args.out)
            if name != "fidelity":
                ok &= bool(res)
                for r in res:
                    ok &= r["swarm"]["completed"] == r["swarm"]["leeches"] and all(
                        p["identical"] for p in r["peers"] if p["role"] == "leech")
    finally:
        labnet.teardown()
    report.table(f"{args.out}/results.jsonl", f"{args.out}/results.md")
    print(open(f"{args.out}/results.md").read())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
