"""Every struct of sat.h against its ctypes mirror in libsat._ffi: a C program, generated
from the header's struct definitions and compiled against it, prints each struct's size
and each field's offset; the mirror must have the same fields in the same order at the
same offsets, and the same size."""
import ctypes
import os
import re
import subprocess

import pytest

from libsat import _ffi

STRUCT_RE = re.compile(r"typedef\s+struct\s+(sat_\w+)\s*\{(.*?)\}\s*(\w+)\s*;", re.S)


def header_structs(path):
    """{struct name: [field names in order]} from the header's struct definitions."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    structs = {}
    for name, body, typedef in STRUCT_RE.findall(text):
        assert name == typedef, f"typedef struct {name} {{...}} {typedef}"
        fields = []
        for decl in body.split(";"):
            decl = decl.strip()
            if decl:
                fields.append(re.match(r".*?(\w+)\s*(\[[^\]]*\]\s*)?$", decl, re.S).group(1))
        structs[name] = fields
    return structs


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory, cc, include_dir):
    structs = header_structs(os.path.join(include_dir, "sat.h"))
    lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <sat.h>", "int main(void) {"]
    for name, fields in structs.items():
        lines.append(f'    printf("{name} %zu\\n", sizeof({name}));')
        for field in fields:
            lines.append(f'    printf("{name}.{field} %zu\\n", offsetof({name}, {field}));')
    lines += ["    return 0;", "}"]
    work = tmp_path_factory.mktemp("layout")
    src, exe = work / "layout.c", work / "layout"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", include_dir, str(src), "-o",
                    str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    values = dict(line.rsplit(" ", 1) for line in out.splitlines())
    return structs, {k: int(v) for k, v in values.items()}


def test_every_header_struct_has_a_mirror(c_layout):
    structs, _ = c_layout
    assert len(structs) >= 10
    assert sorted(structs) == sorted(_ffi.STRUCTS)


@pytest.mark.parametrize("name", sorted(_ffi.STRUCTS))
def test_struct_layout_matches_c(c_layout, name):
    structs, c = c_layout
    mirror = _ffi.STRUCTS[name]
    assert [f[0] for f in mirror._fields_] == structs[name]
    for field in structs[name]:
        assert getattr(mirror, field).offset == c[f"{name}.{field}"], field
    assert ctypes.sizeof(mirror) == c[name]
