#!/usr/bin/env python3
"""gosym_seeds.py — writes the seed corpus of fuzz_gosym (tests/fuzz/corpus/
gosym/): small synthetic Go executables (ELF, no section headers, so the
pclntab, build info and module data are found by scanning as in a file
stripped of them) with a function table of three functions, one of them
database/sql.(*DB).ExecContext with Go's stack check and a RET, a type
table and one itab (*sqlite.Error as error); and variants: the Go 1.20+
formats, an unknown release, no build info, truncated. test_gosym.c checks
what is read from valid-go119.elf and valid-go121.elf exactly.
Run from the repository root: python3 tests/fuzz/gosym_seeds.py"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gosym")
BASE = 0x400000
RW = 0x401000


def elf(version, magic, types_off, itabs_off, with_buildinfo=True):
    ro = bytearray(0x1000)
    rw = bytearray(0x1000)
    # pclntab at 0x200
    pcln = 0x200
    names = b"main.main\0database/sql.(*DB).ExecContext\0main.helper\0"
    text = BASE + 0x600
    hdr = struct.pack("<IBBBBQQQQQQQQ", magic, 0, 0, 1, 8, 3, 0, text, 72, 0, 0, 0, 256)
    ro[pcln:pcln + len(hdr)] = hdr
    ro[pcln + 72:pcln + 72 + len(names)] = names
    noffs = [0, names.index(b"database"), names.index(b"main.helper")]
    ft = pcln + 256
    for i, (entry, funcoff) in enumerate([(0, 32), (0x20, 48), (0x40, 64), (0x60, 0)]):
        ro[ft + i * 8:ft + i * 8 + 8] = struct.pack("<II", entry, funcoff)
    for i in range(3):
        ro[ft + 32 + i * 16:ft + 32 + i * 16 + 8] = struct.pack("<Ii", [0, 0x20, 0x40][i], noffs[i])
    # text at 0x600: three functions of 0x20 bytes, int3 padded
    fn = bytes.fromhex("493b6610" "7603" "31c0" "c3" "e800000000" "ebf0")
    for i in range(3):
        ro[0x600 + i * 0x20:0x600 + (i + 1) * 0x20] = fn.ljust(0x20, b"\xcc")
    # types at 0x800
    types = BASE + 0x800
    t = 0x800

    def name(at, s):
        ro[t + at:t + at + 2 + len(s)] = bytes([0, len(s)]) + s

    name(0x10, b"*sqlite.Error")
    name(0x20, b"error")
    name(0x30, b"sqlite.Error")

    def rtype(at, size, kind, str_off, elem=0):
        b = struct.pack("<QQIBBBBQQii", size, 0, 0, 0, 8, 8, kind, 0, 0, str_off, 0)
        ro[t + at:t + at + 48] = b
        if elem:
            ro[t + at + 48:t + at + 56] = struct.pack("<Q", elem)

    rtype(0x40, 8, 22, 0x10, types + 0x80)   # *sqlite.Error -> sqlite.Error
    rtype(0x80, 24, 25, 0x30)                # sqlite.Error, 24 bytes
    rtype(0xc0, 16, 20, 0x20)                # error (interface)
    itab = BASE + 0x900
    ro[0x900:0x918] = struct.pack("<QQQ", types + 0xc0, types + 0x40, 0)
    ro[0x940:0x948] = struct.pack("<Q", itab)
    # build info at RW+0, module data at RW+0x100
    if with_buildinfo:
        v = version.encode()
        rw[0:32] = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
        rw[32:33 + len(v)] = bytes([len(v)]) + v
    md = 0x100
    rw[md:md + 16] = struct.pack("<QQ", BASE + pcln, BASE + pcln + 72)
    rw[md + types_off:md + types_off + 16] = struct.pack("<QQ", types, types + 0x100)
    rw[md + itabs_off:md + itabs_off + 24] = struct.pack("<QQQ", BASE + 0x940, 1, 1)
    eh = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, bytes(7), 2, 62, 1,
                     text, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    ph1 = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, 0x1000, 0x1000, 0x1000)
    ph2 = struct.pack("<IIQQQQQQ", 1, 6, 0x1000, RW, RW, 0x1000, 0x1000, 0x1000)
    ro[0:64] = eh
    ro[64:120] = ph1
    ro[120:176] = ph2
    return bytes(ro + rw)


def uleb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def dwarf():
    """fuzz_gosym's DWARF input: byte n, n bytes of .debug_abbrev, then
    .debug_info: a unit with struct runtime.g {stack at 0, goid at 152}."""
    abbrev = (b"\x01\x11\x01\x03\x08\x00\x00"              # 1: compile_unit, children, name string
              b"\x02\x13\x01\x03\x08\x00\x00"              # 2: structure_type, children, name
              b"\x03\x0d\x00\x03\x08\x38\x0f\x00\x00"      # 3: member, name, data_member_location udata
              b"\x00")
    dies = (b"\x01runtime\x00" + b"\x02runtime.g\x00" + b"\x03stack\x00" + uleb(0) +
            b"\x03goid\x00" + uleb(152) + b"\x00\x00")
    body = struct.pack("<HIB", 4, 0, 8) + dies
    info = struct.pack("<I", len(body)) + body
    return bytes([len(abbrev)]) + abbrev + info


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "valid-go119.elf": elf("go1.19.8", 0xfffffff0, 280, 360),
        "valid-go121.elf": elf("go1.21.5", 0xfffffff1, 296, 376),
        "unknown-release.elf": elf("go1.99.0", 0xfffffff1, 296, 376),
        "no-buildinfo.elf": elf("", 0xfffffff0, 280, 360, with_buildinfo=False),
        "layout-mismatch.elf": elf("go1.19.8", 0xfffffff0, 296, 376),
        "old-magic.elf": elf("go1.16.1", 0xfffffffa, 280, 360),
    }
    seeds["truncated.elf"] = seeds["valid-go119.elf"][:0x300]
    seeds["dwarf-runtime-g.bin"] = dwarf()
    for n, data in seeds.items():
        with open(os.path.join(OUT, n), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
