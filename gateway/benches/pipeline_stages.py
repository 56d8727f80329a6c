#!/usr/bin/env python3
"""Instructions per packet of one pipeline path, by stage: where the count that
measure_pipeline.sh prints goes.

    gateway/benches/measure_pipeline.sh --stages established [--lines]   # runs this

Input: a callgrind profile taken with --dump-instr=yes (exact counts per
instruction address) and the binary it ran. Each counted instruction is
attributed through its inline chain (objdump -l --inlines): walking from the
innermost inlined function outwards, the first function a stage rule names
decides the stage; an instruction no rule claims is the glue of the outermost
gateway function around it (dispatch, forward ...). Function names, not
files, decide, so a helper inlined into two stages counts in each. A function
called out of line is its own chain: it counts under its own name, not its
caller's stage.

usage: pipeline_stages.py CALLGRIND_OUT BINARY PACKETS [--lines[=N]]
  --lines[=N]  also list each stage's N (8) costliest source lines
"""
import re
import subprocess
import sys
from collections import defaultdict

# (stage, substrings of a demangled function name), tried in order on each
# function of an instruction's inline chain, innermost first.
STAGES = [
    ("classify", ["wire::classify::"]),
    ("lookup", ["ConnTable<A>::lookup", "ConnTable<A>::find_hashed", "ConnTable<A>::hash_of", "ConnTable<A>::prefetch",
                "conn::key::FlowKey", "::flow_key"]),
    ("insert", ["ConnTable<A>::insert", "TimerWheel"]),
    ("state and timer", ["::on_packet", "tcp_transition", "Timeouts::of", "tcp_event"]),
    ("counters", ["DestCounters", "count_inbound", "count_outbound", "Counter::inc"]),
    ("egress", ["EgressCache", "egress::route", "RouteTable"]),
    ("rewrite", ["xmit::", "Rewrite", "Endpoints"]),
    ("send", ["send_to_neighbour", "send_on_port", "send_resolved", "Io<"]),
    ("scheduling", ["sched::"]),
    ("local address", ["laddr::"]),
    ("service lookup", ["Snapshot::find"]),
    ("syn proxy", ["synproxy::"]),
    # Out-of-line calls of the frame type's accessors (BufFrame's, in the bench).
    ("frame access", ["as gateway::frame::Frame>", "gateway::frame::Frame::"]),
]


def counts_by_address(path):
    """Instruction address -> count, from a callgrind file of `positions: instr line`."""
    counts = defaultdict(int)
    addr = line = 0
    after_calls = False
    for raw in open(path):
        s = raw.strip()
        if not s:
            continue
        if s.startswith("calls="):
            after_calls = True
            continue
        if s[0] in "+-*0123456789":
            parts = s.split()

            def step(tok, cur):
                if tok == "*":
                    return cur
                if tok.startswith("0x"):
                    return int(tok, 16)
                if tok[0] in "+-":
                    return cur + int(tok)
                return int(tok)

            addr = step(parts[0], addr)
            if len(parts) > 1:
                line = step(parts[1], line)
            if after_calls:
                # The line after calls= is the call's inclusive cost: not this instruction's.
                after_calls = False
            elif len(parts) > 2:
                counts[addr] += int(parts[2])
            continue
        after_calls = False
    return counts


RUST_ESCAPES = {"$LT$": "<", "$GT$": ">", "$u20$": " ", "$C$": ",", "$RF$": "&", "$BP$": "*",
                "$u7b$": "{", "$u7d$": "}", "$u5b$": "[", "$u5d$": "]", "$u27$": "'", "$SP$": "@",
                "$LP$": "(", "$RP$": ")", "..": "::"}


def demangle(sym):
    """A legacy-mangled Rust symbol (_ZN...17h<hash>E) as its path; others unchanged."""
    if not sym.startswith("_ZN"):
        return sym
    parts, i = [], 3
    while i < len(sym) and sym[i].isdigit():
        j = i
        while sym[j].isdigit():
            j += 1
        n = int(sym[i:j])
        parts.append(sym[j:j + n])
        i = j + n
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    path = "::".join(p[1:] if p.startswith("_$") else p for p in parts)
    for k, v in RUST_ESCAPES.items():
        path = path.replace(k, v)
    return path


def inline_chains(binary, wanted):
    """Address -> (source line, [function names, innermost first]) for the wanted addresses."""
    lo, hi = min(wanted), max(wanted) + 1
    out = subprocess.run(
        ["objdump", "-d", "-l", "--inlines", "--no-show-raw-insn",
         f"--start-address={lo:#x}", f"--stop-address={hi:#x}", binary],
        capture_output=True, text=True, check=True).stdout
    chains = {}
    func, where, callers = "?", "?", []
    for l in out.splitlines():
        m = re.match(r"^([^\s].*)\(\):$", l)
        if m:
            func, callers = demangle(m.group(1)), []
            continue
        m = re.match(r"^inlined by (\S+) \((.*)\)$", l)
        if m:
            callers.append(demangle(m.group(2)))
            continue
        m = re.match(r"^(/\S+:\d+)", l)
        if m:
            where, callers = m.group(1), []
            continue
        m = re.match(r"^\s+([0-9a-f]+):", l)
        if m:
            a = int(m.group(1), 16)
            if a in wanted:
                chains[a] = (where, [func] + callers)
    return chains


def stage_of(chain):
    # The stages' rules over the whole chain first, so that a frame accessor
    # inlined into a stage counts in it; the accessors' own rule (the last)
    # then claims them where they were called out of line.
    for rules in (STAGES[:-1], STAGES[-1:]):
        for f in chain:
            for stage, names in rules:
                if any(n in f for n in names):
                    return stage
    gateway = [f for f in chain if f and f.startswith(("gateway::", "<gateway::"))]
    outer = gateway[-1] if gateway else (chain[-1] or "?")
    # "gateway::worker::pipeline::forward::<impl ...>::forward" -> "glue: forward"
    name = re.sub(r"<[^<>]*>", "", re.sub(r"<[^<>]*>", "", outer)).split("::")[-1]
    return f"glue: {name}"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    cg, binary, packets = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lines = 0
    for arg in sys.argv[4:]:
        if arg == "--lines" or arg.startswith("--lines="):
            lines = int(arg.partition("=")[2] or 8)
    counts = counts_by_address(cg)
    chains = inline_chains(binary, set(counts))
    stages = defaultdict(int)
    by_line = defaultdict(lambda: defaultdict(int))
    for a, n in counts.items():
        where, chain = chains.get(a, ("?", ["?"]))
        s = stage_of(chain)
        stages[s] += n
        by_line[s][where] += n
    total = sum(stages.values())
    print(f"{'stage':<24} {'insns/packet':>12}")
    for s, n in sorted(stages.items(), key=lambda kv: -kv[1]):
        if n / packets < 0.5:
            continue
        print(f"{s:<24} {n / packets:>12.1f}")
        if lines:
            for w, k in sorted(by_line[s].items(), key=lambda kv: -kv[1])[:lines]:
                if k / packets >= 1:
                    print(f"{'':<6}{k / packets:>6.1f}  {w.split('/src/')[-1]}")
    print(f"{'total':<24} {total / packets:>12.1f}")


if __name__ == "__main__":
    main()
