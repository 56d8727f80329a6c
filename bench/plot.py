#!/usr/bin/env python3
"""Plots established-flow Mpps against live connections from gwbench's results.

    python3 bench/plot.py target/bench/results.json target/bench/mpps_vs_conns.png

Reads the rows of figure 3 ("Mpps vs live conns"): the FNAT gateway and the
plain forwarder measured at each table size in the same run.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS.json OUT.png")
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    rows = [r for r in doc.get("rows", []) if r["figure"].startswith("3 ")]
    if not rows:
        sys.exit("plot.py: no 'Mpps vs live conns' rows in %s" % sys.argv[1])
    series = {}
    for r in rows:
        series.setdefault(r["name"], []).append(r)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = {"forwarder": ("tab:gray", "s"), "FNAT rr": ("tab:blue", "o")}
    for name, rs in sorted(series.items()):
        rs.sort(key=lambda r: r["flows"])
        colour, marker = styles.get(name, (None, "^"))
        label = "plain forwarder (rx->tx)" if name == "forwarder" else name.replace(" rr", "") + " gateway, 1 worker"
        ax.plot([r["flows"] for r in rs], [r["rate"] / 1e6 for r in rs], marker=marker, color=colour, label=label)
        per_core = [(r["flows"], r["rate_per_worker_core"] / 1e6) for r in rs if r.get("rate_per_worker_core")]
        if per_core:
            ax.plot(*zip(*per_core), marker=marker, color=colour, linestyle=":", alpha=0.6,
                    label=label + " per worker core-second")
    ax.set_xscale("log")
    ax.set_xlabel("live connections (flows round-robin)")
    ax.set_ylabel("answers per second (M)")
    ax.set_ylim(bottom=0)
    m = doc.get("machine", {})
    ax.set_title("Established-flow rate vs live connections\n%s CPUs, %s, %s (load %.1f)" % (
        m.get("cpus", "?"), m.get("link", "memif"), m.get("date", ""), doc.get("load_average_before", float("nan"))),
        fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print("plot: %s" % sys.argv[2])


if __name__ == "__main__":
    main()
