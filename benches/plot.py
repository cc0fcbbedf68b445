#!/usr/bin/env python3
"""Draw the scaling curves of benches/scale.sh as SVG, standard library only.

usage: benches/plot.py [CSV] [--inv INV] [--out DIR]

CSV defaults to bench-results/scale.csv, INV to the newest invocation in it,
DIR to docs/. Writes one file per curve present, scale-{flows,conns,services}.svg:
delivered Mpps (median of the runs, bar from min to max) against the amount of
work on a logarithmic axis, with the invocation, runs and duration in the
caption so smoke runs are recognisable as such.
"""

import argparse
import csv
import math
import os
import statistics
import sys
from xml.sax.saxutils import escape

CURVES = {
    "flows": ("Flows installed and hit", "flows (log)", "vswitch p2p, one exact flow per generator flow"),
    "conns": ("Concurrent connections through a Service", "conntrack entries (log)", "vswitch Service NAT, one UDP connection per flow"),
    "services": ("Number of Services", "Services configured (log)", "vswitch Service NAT, 64 flows to one Service"),
}

W, H = 640, 420
L, R, T, B = 70, 30, 50, 90


def nice_max(v):
    """A round upper bound for the y axis."""
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v * 1.1:
            return m * e
    return 10 * e


def svg(curve, points, caption, sent=None):
    """points: [(n, median, lo, hi)] in pps; sent: [(n, median sent pps)]."""
    title, xlabel, sub = CURVES[curve]
    xs = [p[0] for p in points]
    x0 = 10 ** (math.log10(min(xs)) - 0.25)   # a quarter decade of margin each side
    x1 = 10 ** (math.log10(max(xs)) + 0.25)
    ymax = nice_max(max([p[3] for p in points] + [s[1] for s in sent or []]) / 1e6)
    pw, ph = W - L - R, H - T - B

    def px(n):
        return L + pw * (math.log10(n) - math.log10(x0)) / (math.log10(x1) - math.log10(x0))

    def py(mpps):
        return T + ph * (1 - mpps / ymax)

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{escape(title)}</text>',
         f'<text x="{W/2}" y="37" text-anchor="middle" fill="#555">{escape(sub)}</text>']
    # grid and y ticks
    for i in range(6):
        v = ymax * i / 5
        y = py(v)
        o.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W-R}" y2="{y:.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L-6}" y="{y+4:.1f}" text-anchor="end">{v:.2f}</text>')
    # x ticks: decades
    d = math.ceil(math.log10(x0))
    while 10 ** d <= x1:
        x = px(10 ** d)
        o.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T+ph}" stroke="#eee"/>')
        label = f"{10**d:,}" if d < 6 else f"{10**(d-6):,}M"
        o.append(f'<text x="{x:.1f}" y="{T+ph+16}" text-anchor="middle">{label}</text>')
        d += 1
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{L+pw/2}" y="{T+ph+34}" text-anchor="middle">{escape(xlabel)}</text>')
    o.append(f'<text transform="translate(18,{T+ph/2}) rotate(-90)" text-anchor="middle">delivered Mpps</text>')
    # what the generator got out (dashed): where delivered meets it, the
    # generator, not the switch, is the limit
    if sent:
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(n):.1f},{py(v/1e6):.1f}" for i, (n, v) in enumerate(sent))
        o.append(f'<path d="{path}" fill="none" stroke="#999" stroke-width="1.5" stroke-dasharray="5,4"/>')
    lx = L + 10
    o.append(f'<line x1="{lx}" y1="{T+ph+50}" x2="{lx+24}" y2="{T+ph+50}" stroke="#1f77b4" stroke-width="2"/>')
    o.append(f'<text x="{lx+30}" y="{T+ph+54}">delivered (median, bar min–max)</text>')
    if sent:
        o.append(f'<line x1="{lx+250}" y1="{T+ph+50}" x2="{lx+274}" y2="{T+ph+50}" stroke="#999" stroke-width="1.5" stroke-dasharray="5,4"/>')
        o.append(f'<text x="{lx+280}" y="{T+ph+54}">offered by the generator (median)</text>')
    # min-max bars, the median line, points with labels
    for n, m, lo, hi in points:
        x = px(n)
        o.append(f'<line x1="{x:.1f}" y1="{py(lo/1e6):.1f}" x2="{x:.1f}" y2="{py(hi/1e6):.1f}" stroke="#1f77b4" stroke-width="1.5"/>')
        for yv in (lo, hi):
            o.append(f'<line x1="{x-4:.1f}" y1="{py(yv/1e6):.1f}" x2="{x+4:.1f}" y2="{py(yv/1e6):.1f}" stroke="#1f77b4" stroke-width="1.5"/>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(n):.1f},{py(m/1e6):.1f}" for i, (n, m, _, _) in enumerate(points))
    o.append(f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for n, m, _, _ in points:
        o.append(f'<circle cx="{px(n):.1f}" cy="{py(m/1e6):.1f}" r="3.5" fill="#1f77b4"/>')
        end = px(n) > W - R - 60
        anchor = ' text-anchor="end"' if end else ""
        o.append(f'<text x="{px(n) + (-6 if end else 6):.1f}" y="{py(m/1e6)-8:.1f}" fill="#1f77b4"{anchor}>{m/1e6:.3f}</text>')
    o.append(f'<text x="{W/2}" y="{H-10}" text-anchor="middle" fill="#555" font-size="11">{escape(caption)}</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", default="bench-results/scale.csv")
    ap.add_argument("--inv", help="invocation id (default: the newest in the file)")
    ap.add_argument("--out", default="docs", help="directory for the SVG files")
    ap.add_argument("--note", default="", help="appended to the caption (e.g. the run duration)")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.csv)))
    if not rows:
        sys.exit(f"{a.csv}: no rows")
    inv = a.inv or max(r["inv"] for r in rows)
    rows = [r for r in rows if r["inv"] == inv]
    if not rows:
        sys.exit(f"{a.csv}: no rows of invocation {inv}")
    os.makedirs(a.out, exist_ok=True)
    for curve in CURVES:
        rs = [r for r in rows if r["curve"] == curve]
        if not rs:
            continue
        by, sn = {}, {}
        for r in rs:
            by.setdefault(int(r["n"]), []).append(int(r["delivered_pps"]))
            sn.setdefault(int(r["n"]), []).append(int(r["sent_pps"]))
        pts = [(n, statistics.median(v), min(v), max(v)) for n, v in sorted(by.items())]
        sent = [(n, statistics.median(v)) for n, v in sorted(sn.items())]
        runs = max(len(v) for v in by.values())
        size = rs[0]["size"]
        caption = f"run {inv}: {size}-byte frames, max rate, median of {runs} run{'s' if runs > 1 else ''} (bar: min–max)" + (f", {a.note}" if a.note else "")
        path = os.path.join(a.out, f"scale-{curve}.svg")
        with open(path, "w") as f:
            f.write(svg(curve, pts, caption, sent))
        print(path)


if __name__ == "__main__":
    main()
