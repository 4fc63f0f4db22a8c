#!/usr/bin/env python3
"""Read a Prometheus text page (stdin) and check or print figures.

  prom.py check                 the page parses: HELP/TYPE before samples,
                                histograms cumulative with _count == +Inf
  prom.py get 'NAME{a="b"}'     the value of one sample (exit 1 if absent)
  prom.py sum NAME [LABEL=VAL]  sum of every sample of NAME (with that label)
"""
import re
import sys

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def parse(text):
    samples, types = {}, {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if line.startswith("#") or not line:
            continue
        m = LINE.match(line)
        if not m:
            sys.exit(f"line {n} does not parse: {line!r}")
        name, labels, value = m.group(1), m.group(3) or "", float(m.group(4))
        base = re.sub(r'_(bucket|sum|count)$', '', name)
        if name not in types and base not in types:
            sys.exit(f"line {n}: {name} has no TYPE line before it")
        samples[name + ("{" + labels + "}" if labels else "")] = value
    return samples, types


def check_histograms(samples, types):
    for name, typ in types.items():
        if typ != "histogram":
            continue
        buckets = [(k, v) for k, v in samples.items() if k.startswith(name + "_bucket{")]
        if not buckets:
            sys.exit(f"histogram {name} has no buckets")
        values = [v for _, v in buckets]
        if values != sorted(values):
            sys.exit(f"histogram {name} buckets are not cumulative: {values}")
        inf = samples.get(name + '_bucket{le="+Inf"}')
        if inf is None or inf != samples.get(name + "_count"):
            sys.exit(f"histogram {name}: +Inf bucket {inf} != _count {samples.get(name + '_count')}")


def main():
    samples, types = parse(sys.stdin.read())
    if sys.argv[1] == "check":
        check_histograms(samples, types)
        print(f"{len(samples)} samples, {len(types)} metrics")
    elif sys.argv[1] == "get":
        if sys.argv[2] not in samples:
            sys.exit(f"no sample {sys.argv[2]}")
        print(f"{samples[sys.argv[2]]:g}")
    elif sys.argv[1] == "sum":
        name = sys.argv[2]
        want = sys.argv[3] if len(sys.argv) > 3 else None
        total = 0.0
        for k, v in samples.items():
            base, _, labels = k.partition("{")
            if base != name:
                continue
            if want:
                key, val = want.split("=", 1)
                if f'{key}="{val}"' not in labels:
                    continue
            total += v
        print(f"{total:g}")


main()
