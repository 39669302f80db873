"""The laboratory's outputs: a Markdown table from results.jsonl and a PNG per scenario."""
import json


def table(jsonl, md):
    recs = []
    try:
        recs = [json.loads(l) for l in open(jsonl)]
    except FileNotFoundError:
        pass
    lines = ["| scenario | client | leeches done | all done (s) | bound (s) | × bound | seed copies "
             "| median leech (s) | leech CPU s (mean) | leech peak RSS MiB (max) | wasted MiB "
             "| of which duplicate / unrequested / corrupt |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        s, b = r["swarm"], r["bound_s"]
        le = [p for p in r["peers"] if p["role"] == "leech"]
        ct = sorted(p["completion_s"] for p in le if p["completion_s"] is not None)
        cpu = [p["cpu_s"] for p in le if p["cpu_s"] is not None]
        rss = [p["rss_kib"] for p in le if p["rss_kib"] is not None]
        w = [p["wasted"] for p in le if p["wasted"] is not None]
        f = lambda v, fmt="%.1f": "-" if v is None else fmt % v
        causes = "-"
        split = [p.get("waste") for p in le if p.get("waste")]
        if split:
            def cause(c):
                v = [x[c] for x in split if x.get(c) is not None]
                return f(sum(v) / 2**20 if v else None)
            causes = " / ".join(cause(c) for c in ("duplicate", "unrequested", "corrupt"))
        lines.append("| %s%s | %s | %d/%d | %s | %.1f | %s | %.2f | %s | %s | %s | %s | %s |" % (
            r["scenario"], " (short)" if r.get("short") else "", r["kind"], s["completed"],
            s["leeches"], f(s["all_done_s"]), b,
            f(s["all_done_s"] / b if s["all_done_s"] else None, "%.2f"), s["seed_copies"],
            f(ct[len(ct) // 2] if ct else None), f(sum(cpu) / len(cpu) if cpu else None, "%.2f"),
            f(max(rss) / 1024 if rss else None), f(sum(w) / 2**20 if w else None), causes))
    open(md, "w").write("\n".join(lines) + "\n")


def plot(results, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    if not results:
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        ct = sorted(p["completion_s"] + p["arrive_s"] for p in r["peers"]
                    if p["role"] == "leech" and p["completion_s"] is not None)
        a1.step(ct, range(1, len(ct) + 1), where="post", label=r["kind"])
        av = r.get("availability") or []
        if av:
            a2.plot([x[0] for x in av], [x[2] for x in av], label=f"{r['kind']} mean")
            a2.plot([x[0] for x in av], [x[1] for x in av], "--", label=f"{r['kind']} min")
    a1.axvline(results[0]["bound_s"], color="grey", ls=":", label="fluid bound")
    a1.set_xlabel("time since start (s)")
    a1.set_ylabel("leeches complete")
    a1.legend()
    a2.set_xlabel("time since start (s)")
    a2.set_ylabel("copies of a piece (tracker polls)")
    a2.legend(fontsize=7)
    fig.suptitle(results[0]["scenario"])
    fig.tight_layout()
    fig.savefig(png, dpi=90)
