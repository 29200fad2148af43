#!/usr/bin/env bash
# Every method of opt's table on every toy with the toy's (the paper's)
# settings: the distance of the final iterate to the known answer, or how the
# method failed. A markdown table on stdout, from `bome run TOY --method M --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${BOME_EXE:-build/problems/bome}
toys=(nonsingleton coreset ridge minimax ufo-toy)
printf '| method |'; printf ' %s |' "${toys[@]}"; printf '\n|---|'; printf -- '---|%.0s' "${toys[@]}"; printf '\n'
for m in $("$exe" methods | awk '{print $1}'); do
    printf '| %s |' "$m"
    for t in "${toys[@]}"; do
        "$exe" run "$t" --method "$m" --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
if d["status"] != "ok":
    s = d["status"]
    print(" fails: " + (s.split(": ")[0] + ", non-finite" if "non-finite" in s else s[:40]) + " |", end="")
else:
    print(" %.3g |" % d["distance_to_answer"], end="")' || true
    done
    printf '\n'
done
