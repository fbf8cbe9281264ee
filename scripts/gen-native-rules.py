#!/usr/bin/env python3
"""Generates prometheus/rules/sli-native.yml from prometheus/rules/sli.yml.

sli.yml reads the classic histogram series (`_bucket`, `_count`) of a text scrape. A Prometheus
that scrapes the daemon natively (--enable-feature=native-histograms, protobuf) stores one native
histogram series instead and has none of them. For every rule of sli.yml that reads a classic
histogram, this writes a rule recording the SAME series name from the native histogram:

  sum by (L) (F(M_bucket{S, le="T"}[W])) / sum by (L) (F(M_count{S}[W]))
      -> histogram_fraction(0, T, sum by (L) (F(M{S}[W])))
  sum by (L) (F(M_count{S}[W])) - sum by (L) (F(M_bucket{S, le="T"}[W]))
      -> count * (1 - histogram_fraction(0, T, ...)), 0 when the count is 0 (as the classic form)

Rules without classic histogram series (counter ratios) are left to sli.yml: they work on both
scrapes. A rule that reads a histogram in any other shape stops the script: extend it here.
Load both files: on a text scrape the native rules select nothing and record nothing, on a
native scrape the classic latency rules record nothing.

Usage: scripts/gen-native-rules.py [OUT]     (default: prometheus/rules/sli-native.yml)
Run it after changing sli.yml and commit the result; tests/alerting/native_histograms.rs
regenerates into a temporary file and fails when the committed file differs.
Python 3 standard library only.
"""

import math
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
SOURCE = REPO / "prometheus/rules/sli.yml"
SCHEMA = 3  # the daemon's native histograms: bucket bounds 2^(i/8)

SEL = r'(?P<m>[a-zA-Z_:][a-zA-Z0-9_:]*)_{kind}\{{(?P<sel{n}>[^}}]*)\}}\[(?P<w{n}>\w+)\]'
TERM = r'sum by \((?P<by{n}>[^)]*)\) \((?P<f{n}>rate|increase)\({sel}\)\)'


def term(kind, n, first):
    sel = SEL.format(kind=kind, n=n)
    if not first:
        sel = sel.replace("(?P<m>[a-zA-Z_:][a-zA-Z0-9_:]*)", "(?P=m)")
    return TERM.format(n=n, sel=sel)


RATIO = re.compile("^" + term("bucket", 1, True) + " / " + term("count", 2, False) + "$")
BAD = re.compile("^" + term("count", 1, True) + " - " + term("bucket", 2, False) + "$")
LE = re.compile(r'^(?P<sel>.*?),\s*le="(?P<t>[^"]+)"$')


def fail(msg):
    sys.exit(f"{SOURCE.relative_to(REPO)}: {msg}")


def rules(text):
    """(record, expr) of every rule, expr with whitespace collapsed."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)- record: (\S+)$", line)
        if not m:
            continue
        expr = lines[i + 1].strip()
        if expr == "expr: |":
            indent = len(lines[i + 2]) - len(lines[i + 2].lstrip())
            body = []
            for line2 in lines[i + 2 :]:
                if line2.strip() and len(line2) - len(line2.lstrip()) < indent:
                    break
                body.append(line2.strip())
            expr = " ".join(b for b in body if b)
        elif expr.startswith("expr: "):
            expr = expr[len("expr: ") :]
        else:
            fail(f"rule {m.group(2)}: `expr:` must follow `record:`")
        out.append((m.group(2), re.sub(r"\s+", " ", expr).replace("( ", "(").replace(" )", ")")))
    return out


def parts(m):
    """(by, function, metric, selector, window, threshold) of a matched pair of terms."""
    for k in ("by", "f", "w"):
        if m.group(k + "1") != m.group(k + "2"):
            fail(f"the two terms differ in {k}: {m.group(0)}")
    bucket_n = "1" if m.re is RATIO else "2"
    count_n = "2" if m.re is RATIO else "1"
    le = LE.match(m.group("sel" + bucket_n))
    if not le or le.group("sel") != m.group("sel" + count_n):
        fail(f"the _bucket selector must be the _count selector plus a last `le`: {m.group(0)}")
    return m.group("by1"), m.group("f1"), m.group("m"), le.group("sel"), m.group("w1"), le.group("t")


def native(expr):
    """The native-histogram form of a classic expression, or None if it reads no histogram."""
    if not re.search(r"_(bucket|count|sum)\b", expr):
        return None, None
    for pattern in (RATIO, BAD):
        m = pattern.match(expr)
        if not m:
            continue
        by, f, metric, sel, w, t = parts(m)
        h = f"sum by ({by}) ({f}({metric}{{{sel}}}[{w}]))"
        if pattern is RATIO:
            return f"histogram_fraction(0, {t}, {h})\n", t
        return (
            f"(histogram_count({h}) > 0)\n"
            f"* (1 - histogram_fraction(0, {t}, {h}))\n"
            "or\n"
            f"histogram_count({h})\n"
        ), t
    fail(f"reads a classic histogram in a shape scripts/gen-native-rules.py cannot translate: {expr}")


def threshold_note(t):
    v = float(t)
    i = math.log2(v) * 2**SCHEMA
    if v > 0 and abs(i - round(i)) < 1e-9:
        return f"#   {t} s = 2^({round(i)}/8), a bucket bound at schema 3: histogram_fraction is exact there.\n"
    lo = 2 ** (math.floor(i) / 2**SCHEMA)
    hi = 2 ** (math.ceil(i) / 2**SCHEMA)
    return (
        f"#   {t} s is NOT a bucket bound at schema 3: histogram_fraction interpolates within the native\n"
        f"#   bucket ({lo:.4g}, {hi:.4g}], so observations in it may be counted on the wrong side.\n"
    )


def generate():
    out_rules = []
    thresholds = []
    for record, expr in rules(SOURCE.read_text()):
        n, t = native(expr)
        if n is None:
            continue
        if t not in thresholds:
            thresholds.append(t)
        body = "".join(f"          {line}\n" for line in n.splitlines())
        out_rules.append(f"      - record: {record}\n        expr: |\n{body}")
    if not out_rules:
        fail("no rule reads a classic histogram: nothing to generate")
    return (
        "# Generated by scripts/gen-native-rules.py from prometheus/rules/sli.yml: do not edit by hand;\n"
        "# edit sli.yml and run the script again (tests/alerting/native_histograms.rs checks it).\n"
        "# The latency SLIs of sli.yml from NATIVE histograms (a Prometheus with\n"
        "# --enable-feature=native-histograms scraping the daemon over protobuf), under the same\n"
        "# recorded names, so the alerts and dashboards that read them work unchanged. Load it with\n"
        "# sli.yml (whose counter-based SLIs work on both scrapes): on a text scrape these rules select\n"
        "# nothing and record nothing. Thresholds (see docs/metrics.md):\n"
        + "".join(threshold_note(t) for t in thresholds)
        + "groups:\n  - name: mcp-canary-sli-native\n    rules:\n"
        + "".join(out_rules)
    )


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "prometheus/rules/sli-native.yml"
    out.write_text(generate())


if __name__ == "__main__":
    main()
