#!/usr/bin/env python3
"""Plots established-flow Mpps against live connections from gwbench's results.

    python3 bench/plot.py OUT.png RESULTS.json[:LABEL] [RESULTS.json[:LABEL] ...]
    python3 bench/plot.py RESULTS.json OUT.png          (one run, as scripts/bench.sh calls it)

Reads the rows of figure 3 ("Mpps vs live conns"): the FNAT gateway and the
plain forwarder measured at each table size in the same run. Several result
files draw on one picture (before and after a change): each file gets a
colour, its FNAT series solid and its forwarder dashed, labelled LABEL (by
default the commit the results record, else the file's name). The title
names each file's machine and commit where the results record them.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

USAGE = "usage: plot.py OUT.png RESULTS.json[:LABEL] [RESULTS.json[:LABEL] ...]\n" \
        "       plot.py RESULTS.json OUT.png"
IMAGE = (".png", ".svg", ".pdf")
FIGURE = "3 "


def parse_args(argv):
    """(out, [(path, label or None)]) from the command line, either form."""
    if len(argv) >= 2 and argv[0].endswith(IMAGE):
        return argv[0], [split_label(a) for a in argv[1:]]
    if len(argv) == 2 and argv[1].endswith(IMAGE):
        return argv[1], [(argv[0], None)]
    sys.exit(USAGE)


def split_label(arg):
    """RESULTS.json:LABEL -> (RESULTS.json, LABEL); a bare path -> (path, None)."""
    path, sep, label = arg.rpartition(":")
    if sep and path and (path.endswith(".json") or os.path.exists(path)) and not os.path.exists(arg):
        return path, label
    return arg, None


def load(path, label):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("plot.py: %s: %s" % (path, e))
    rows = [r for r in doc.get("rows", []) if r["figure"].startswith(FIGURE)]
    if not rows:
        sys.exit("plot.py: no 'Mpps vs live conns' rows in %s" % path)
    m = doc.get("machine", {})
    if label is None:
        label = m.get("commit") or os.path.splitext(os.path.basename(path))[0]
    series = {}
    for r in rows:
        series.setdefault(r["name"], []).append(r)
    for rs in series.values():
        rs.sort(key=lambda r: r["flows"])
    return {"label": label, "machine": m, "load": doc.get("load_average_before", float("nan")), "series": series}


def describe(run, with_label):
    """One line of the title: the run's commit, machine, date and load."""
    m = run["machine"]
    parts = []
    # A label that is the commit already names it.
    if m.get("commit") and not (with_label and m["commit"] == run["label"]):
        parts.append("commit %s" % m["commit"])
    parts.append("%s CPUs%s" % (m.get("cpus", "?"), " " + m["cpu_model"] if m.get("cpu_model") else ""))
    if m.get("date"):
        parts.append(m["date"])
    text = ", ".join(parts) + " (load %.1f)" % run["load"]
    return "%s: %s" % (run["label"], text) if with_label else text + "\n" + m.get("link", "memif")


def series_label(name):
    return "plain forwarder (rx->tx)" if name == "forwarder" else name.replace(" rr", "") + " gateway, 1 worker"


def main():
    out, inputs = parse_args(sys.argv[1:])
    runs = [load(path, label) for path, label in inputs]
    labels = [r["label"] for r in runs]
    for i, r in enumerate(runs):
        if labels.count(r["label"]) > 1:
            r["label"] = "%s #%d" % (r["label"], i + 1)
    several = len(runs) > 1

    fig, ax = plt.subplots(figsize=(7.5, 4.6 if several else 4.2))
    single_styles = {"forwarder": "tab:gray", "FNAT rr": "tab:blue"}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        for name, rs in sorted(run["series"].items()):
            forwarder = name == "forwarder"
            marker = "s" if forwarder else ("o" if name == "FNAT rr" else "^")
            if several:
                colour = palette[i % len(palette)]
                style = "--" if forwarder else "-"
                label = "%s: %s" % (run["label"], series_label(name))
            else:
                colour, style, label = single_styles.get(name), "-", series_label(name)
            ax.plot([r["flows"] for r in rs], [r["rate"] / 1e6 for r in rs], marker=marker, color=colour,
                    linestyle=style, alpha=0.7 if several and forwarder else 1.0, label=label)
            per_core = [(r["flows"], r["rate_per_worker_core"] / 1e6) for r in rs if r.get("rate_per_worker_core")]
            if per_core:
                ax.plot(*zip(*per_core), marker=marker, color=colour, linestyle=":", alpha=0.6,
                        label=label + " per worker core-second")
    ax.set_xscale("log")
    ax.set_xlabel("live connections (flows round-robin)")
    ax.set_ylabel("answers per second (M)")
    ax.set_ylim(bottom=0)
    title = ["Established-flow rate vs live connections"] + [describe(r, several) for r in runs]
    ax.set_title("\n".join(title), fontsize=8 if several else 9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7 if several else 8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("plot: %s" % out)


if __name__ == "__main__":
    main()
