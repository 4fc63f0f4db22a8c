#!/usr/bin/env python3
"""Make a seed for tests/fuzz/fuzz_image.c from a checkpoint image directory.

usage: mkseed_image.py IMAGE_DIR OUT [--raw] [--pages [lazy]]

Writes the flags byte, then one record [part u8][pid u32 le][len u32 le]
[bytes] per part file of the image. Without --raw the 64-byte frame is
cut off (the target writes a fresh one); without --pages the pages files
are left out and the target loads without them.
The committed seeds came from `krg checkpoint PID --dir D --kill
--ignore-unsupported` of a `sleep 300` started with stdio on /dev/null.
"""
import os
import re
import struct
import sys

PARTS = {"inventory": 1, "core": 2, "mm": 3, "files": 4, "pages": 5, "sysvipc": 6}


def main():
    args = sys.argv[1:]
    raw = "--raw" in args
    pages = "--pages" in args
    lazy = "lazy" in args
    src, out = [a for a in args if not a.startswith("--") and a != "lazy"][:2]
    flags = (1 if raw else 0) | ((2 if lazy else 1) << 1 if pages else 0)
    rec = bytearray([flags])
    for name in sorted(os.listdir(src), key=lambda n: (n != "inventory.img", n)):
        m = re.fullmatch(r"(inventory|core|mm|files|pages|sysvipc)(?:-(\d+))?\.img", name)
        if not m or (m.group(1) == "pages" and not pages):
            continue
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        if not raw:
            data = data[64:]
        rec += struct.pack("<BII", PARTS[m.group(1)], int(m.group(2) or 0), len(data)) + data
    with open(out, "wb") as f:
        f.write(rec)


main()
