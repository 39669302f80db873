"""The laboratory's network: a star of emulated access links between network namespaces.

Node i lives in namespace `enjlab-i` with address 10.77.0.(i+1)/16 on a TAP device `lab0`. The
TAP belongs to a `vde_switch` running inside that namespace; a `wirefilter` joins that switch to
the hub switch. The wirefilter is the node's access link: LR is the uplink (node to hub), RL the
downlink, each with its own rate, delay (+ jitter), loss and queue. A packet from node i to node j
crosses i's uplink and then j's downlink, so the one-way delay is up_delay(i) + down_delay(j).

Only namespaces named `enjlab-*` are created or removed; the state directory holds the sockets.
"""
import os
import shutil
import signal
import subprocess
import time

PREFIX = "enjlab-"
STATE = "/tmp/enjlab"


def addr(i):
    return f"10.77.{(i + 1) // 256}.{(i + 1) % 256}"


def ns(i):
    return f"{PREFIX}{i}"


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def in_ns(i, *cmd):
    return ["ip", "netns", "exec", ns(i), *cmd]


def _dir_arg(key, up, down):
    """A wirefilter option with its LR (up) and RL (down) values."""
    out = []
    if up is not None:
        out += [key, f"LR{up}"]
    if down is not None:
        out += [key, f"RL{down}"]
    return out


def link_args(link):
    """wirefilter options for a link dict: up/down rate (bytes/s), delay_ms, jitter_ms, loss (%),
    queue (bytes). Values are per direction: `up_rate`, `down_rate`, `delay_ms` (both ways) or
    `up_delay_ms`/`down_delay_ms`, and so on."""
    a = []

    def both(name):
        return link.get(f"up_{name}", link.get(name)), link.get(f"down_{name}", link.get(name))

    ru, rd = both("rate")
    a += _dir_arg("-b", int(ru) if ru else None, int(rd) if rd else None)
    du, dd = both("delay_ms")
    ju, jd = both("jitter_ms")
    fmt = lambda d, j: None if not d and not j else (f"{d}+{j}U" if j else f"{d}")
    a += _dir_arg("-d", fmt(du or 0, ju), fmt(dd or 0, jd))
    lu, ld = both("loss")
    a += _dir_arg("-l", lu if lu else None, ld if ld else None)
    qu, qd = both("queue")
    # -c has no LR/RL form in every build: one value for both directions.
    q = qu or qd
    if q:
        a += ["-c", str(int(q))]
    return a


class Net:
    def __init__(self, links):
        """links: list of link dicts, one per node (node i gets links[i])."""
        self.links = links
        self.procs = []

    def up(self):
        teardown()
        os.makedirs(STATE, exist_ok=True)
        hub = f"{STATE}/hub"
        self._daemon(["vde_switch", "-s", hub, "-n", str(len(self.links) + 8)], f"{STATE}/hub.pid")
        for i, link in enumerate(self.links):
            sh("ip", "netns", "add", ns(i))
            sw = f"{STATE}/sw{i}"
            self._daemon(in_ns(i, "vde_switch", "-s", sw, "-t", "lab0"), f"{STATE}/sw{i}.pid")
            for _ in range(100):
                if sh(*in_ns(i, "ip", "link", "show", "lab0"), check=False).returncode == 0:
                    break
                time.sleep(0.02)
            mac = "02:77:00:00:%02x:%02x" % ((i + 1) // 256, (i + 1) % 256)
            sh(*in_ns(i, "ip", "link", "set", "lab0", "address", mac))
            sh(*in_ns(i, "ip", "addr", "add", f"{addr(i)}/16", "dev", "lab0"))
            sh(*in_ns(i, "ip", "link", "set", "lab0", "up"))
            sh(*in_ns(i, "ip", "link", "set", "lo", "up"))
            self._daemon(["wirefilter", "-v", f"{sw}:{hub}", *link_args(link)], f"{STATE}/wf{i}.pid")
        # Fill every ARP cache now so no first connection pays for ARP, and the links are proven.
        n = len(self.links)
        for i in range(n):
            for j in range(n):
                if i != j:
                    mac = "02:77:00:00:%02x:%02x" % ((j + 1) // 256, (j + 1) % 256)
                    sh(*in_ns(i, "ip", "neigh", "replace", addr(j), "lladdr", mac, "dev", "lab0",
                              "nud", "permanent"))
        return self

    def _daemon(self, cmd, pidfile):
        # wirefilter -v reads management commands from stdin: give it a pipe that stays open.
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        with open(pidfile, "w") as f:
            f.write(str(p.pid))
        self.procs.append(p)
        time.sleep(0.03)

    def down(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []
        teardown()


def teardown():
    """Remove everything a previous run left: processes in our namespaces, our daemons, the
    namespaces, the sockets. Touches only `enjlab-*` namespaces and pids in STATE."""
    r = sh("ip", "netns", "list", check=False)
    names = [l.split()[0] for l in r.stdout.splitlines() if l.startswith(PREFIX)]
    for name in names:
        pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    if os.path.isdir(STATE):
        for f in os.listdir(STATE):
            if f.endswith(".pid"):
                try:
                    os.kill(int(open(f"{STATE}/{f}").read()), signal.SIGKILL)
                except (ProcessLookupError, ValueError, OSError):
                    pass
    for name in names:
        sh("ip", "netns", "del", name, check=False)
    shutil.rmtree(STATE, ignore_errors=True)


if __name__ == "__main__":
    teardown()
