#!/usr/bin/env python3
"""Summarise ``bench/results/*.json`` (written by the benchmarks).

* ``python bench/report.py --summary [codec poll login memory]``: every target check with
  PASS/FAIL and the notes (what bench/run.sh prints at the end).
* ``python bench/report.py --markdown``: the figures table of bench/README.md, with the machine.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ("codec", "poll", "login", "memory", "handover", "cluster")

# figures shown in the README table: (bench, regex on the figure name)
KEY_FIGURES = [
    ("codec", r"^(decode_poll|encode_login|encode_match)\.(compiled|interpreted|chio)_us$"),
    ("poll", r"^baseline_before_\d+\.(rps|server_cpu_us_per_req)$"),
    ("poll", r"^(idle|status|chat)_\d+\.(rps|p99_ms|server_cpu_us_per_req)$"),
    ("poll", r"^chat_1000\.messages_per_s$|^chat\.broadcast_\d+\.(median_us|ns_per_member)$"),
    ("poll", r"^idle_\d+\.vs_baseline_cpu_normalised$|^scale_.*_cpu_normalised$|^uvloop\..*|"
             r"^idle_1000_(uvloop|asyncio_again)\.(rps|server_cpu_us_per_req)$|^baseline_uvloop\.rps$"),
    ("login", r"^raw_bcrypt\.(checks_per_s_server_core|cpu_ms_per_check)$|"
              r"^(cold|warm|warm_64)\.(logins_per_s|server_cpu_ms_per_login|login_p99_ms)$|"
              r"^warm\.(server_cpu_ms_per_login_excl_polls|cpu_ms_per_login_per_1000_online)$|"
              r"^cold\.vs_raw_bcrypt_cpu_normalised$|^polls_during_(quiet|cold|warm)\.(p99_ms|max_ms)$"),
    ("memory", r".*"),
    ("handover", r".*"),
    ("cluster", r".*"),
]


def load(names) -> list[dict]:
    out = []
    for name in names:
        path = RESULTS / f"{name}.json"
        if path.exists():
            out.append(json.loads(path.read_text()))
    return out


def fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def summary(names) -> int:
    failed = 0
    for data in load(names):
        for c in data["checks"]:
            op = ">=" if c.get("higher_is_better", True) else "<="
            unit = c.get("unit", "x")
            print(f"  {'PASS' if c['ok'] else 'FAIL'}  {data['bench']}.{c['name']:<34} {fmt(c['ratio']):>8}{unit:<3} "
                  f"(target {op} {c['target']:g}{unit})")
            failed += not c["ok"]
        for note in data.get("notes", []):
            print(f"  note  {data['bench']}: {note}")
    return 1 if failed else 0


def markdown() -> None:
    runs = load(ORDER)
    if not runs:
        print("no results in bench/results/ (run bench/run.sh first)")
        return
    m = runs[0]["machine"]
    print(f"Machine: {m['cpu']}, nproc {m['nproc']}, Python {m['python']}, Linux {m['kernel']}; "
          f"server pinned to core {m['server_core']}, load generator to core {m['load_core']}. "
          f"Run {runs[0]['when']}.\n")
    print("| benchmark | figure | value | unit | target | result |")
    print("|---|---|---:|---|---|---|")
    for data in runs:
        for c in data["checks"]:
            op = ">=" if c.get("higher_is_better", True) else "<="
            unit = c.get("unit", "x")
            print(f"| {data['bench']} | **{c['name']}** | **{fmt(c['ratio'])}** | {unit} | {op} {c['target']:g}{unit} | "
                  f"{'PASS' if c['ok'] else '**FAIL**'} |")
        for bench, pattern in KEY_FIGURES:
            if bench != data["bench"]:
                continue
            for f in data["figures"]:
                if re.search(pattern, f["name"]):
                    print(f"| {bench} | {f['name']} | {fmt(f['value'])} | {f['unit']} | | |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", nargs="*", metavar="BENCH")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.markdown:
        markdown()
        return 0
    return summary(args.summary or ORDER)


if __name__ == "__main__":
    sys.exit(main())
