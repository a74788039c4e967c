#!/usr/bin/env python3
"""docs/fips140-3.md names real tests.

    fips_map_tests_exist.py DOC BUILD_DIR

Reads the table of DOC: every FIPS 140-3 area must have its row; a row's
last column names ctest tests (`area/name` in backticks) or says the area is
out of scope; each named test must be listed by `ctest -N` in BUILD_DIR.
Exit 0 if so, 1 with one line per problem otherwise.
"""
import re
import subprocess
import sys

AREAS = [
    "Cryptographic module specification",
    "Cryptographic module interfaces",
    "Roles, services and authentication",
    "Software/firmware security",
    "Operational environment",
    "Physical security",
    "Non-invasive security",
    "SSP management: generation",
    "SSP management: establishment",
    "SSP management: entry",
    "SSP management: output",
    "SSP management: storage",
    "SSP management: zeroisation",
    "Self-tests: pre-operational",
    "Self-tests: conditional",
    "Life-cycle assurance",
    "Mitigation of other attacks",
]
TEST = re.compile(r"`([a-z0-9_]+/[A-Za-z0-9_.-]+)`")


def table_rows(text):
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| ---") or line.startswith("| Area "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        yield cells


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    doc, build = sys.argv[1], sys.argv[2]
    rows = list(table_rows(open(doc, encoding="utf-8").read()))
    listed = subprocess.run(["ctest", "-N"], cwd=build, capture_output=True, text=True,
                            check=True).stdout
    known = set(re.findall(r"Test +#\d+: (\S+)", listed))
    problems, named = [], 0
    by_area = {r[0]: r for r in rows}
    for area in AREAS:
        if area not in by_area:
            problems.append(f"no row for the area '{area}'")
    for cells in rows:
        if len(cells) != 3:
            problems.append(f"row '{cells[0]}' has {len(cells)} columns, not 3")
            continue
        area, _, tests = cells
        names = TEST.findall(tests)
        if not names and "out of scope" not in tests.lower():
            problems.append(f"'{area}' names no test and does not say it is out of scope")
        for name in names:
            named += 1
            if name not in known:
                problems.append(f"'{area}' names {name}, which ctest -N does not list")
    if named < 20:
        problems.append(f"only {named} test names found: is the table's format still "
                        "'| area | control | `tests` |'?")
    if len(known) < 20:
        problems.append(f"ctest -N in {build} lists only {len(known)} tests")
    for p in problems:
        print("FAIL: docs/fips140-3.md: " + p)
    if not problems:
        print(f"docs/fips140-3.md: {len(rows)} areas, {named} test names, all listed by ctest")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
