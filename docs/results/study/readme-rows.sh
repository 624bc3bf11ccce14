#!/usr/bin/env bash
# Copies the study's verdict rows from verdicts.md's summary into the README, between its markers
# <!-- study:claims --> … <!-- /study:claims --> (claims 1–3), <!-- study:batch --> (the batch-size statement) and
# <!-- study:adaptation --> (claim 4), and sets the README's counts of finished classification and adaptation runs.
# The rows are chosen by metric, never by outcome: claim 1 by the area under the validation curve (steps to a threshold
# move in whole validation intervals, see README.md here), every claim 2, 3, 4 and batch-size row. Run it after
# `uan report --study docs/results/study`; ReadmeQuotesTests checks the result.
set -euo pipefail
cd "$(dirname "$0")/../../.."
verdicts=docs/results/study/verdicts.md readme=README.md
rows() {  # $1: claim ids (regex), printed as README rows: the summary's columns without "seeds for a decision"
  awk -v want="$1" -F' \\| ' '
    /^## Summary/ { on = 1; next } /^## / { on = 0 }
    on && /^\| / {
      claim = substr($1, 3)
      if (claim !~ "^(" want ")$") next
      if (claim == "1" && $4 !~ /area under the curve/) next
      words = claim == "1" ? "1 learns faster" : claim == "2" ? "2 more accurate" : claim == "3" ? "3 stabler gradients" \
            : claim == "4" ? "4 helps adaptation" : "batch size"
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", words, $2, $3, $4, $5, $6, $7
    }' "$verdicts"
}
header='| claim | where | comparison | metric | seeds | difference [95 % CI] | verdict |
|---|---|---|---|---|---|---|'
fill() {  # $1: marker name, $2: table body
  local body="$header"$'\n'"$2"
  [ -n "$2" ] || body="No finished runs yet."
  grep -qx "<!-- study:$1 -->" "$readme" || { echo "README has no <!-- study:$1 --> marker" >&2; exit 1; }
  BODY="$body" awk -v m="$1" '
    $0 == "<!-- study:" m " -->" { print; print ENVIRON["BODY"]; skip = 1; next }
    $0 == "<!-- /study:" m " -->" { skip = 0 }
    !skip' "$readme" > "$readme.tmp"
  mv "$readme.tmp" "$readme"
}
fill claims "$(rows '1|2|3')"
fill batch "$(rows 'batch')"
fill adaptation "$(rows '4')"
n=$(grep '^Used (' "$verdicts" | grep -o '`fmnist-' | wc -l)
m=$(grep '^Used (' "$verdicts" | grep -o '`adapt-' | wc -l)
# The sentence may wrap anywhere: match it whole, across line breaks, and set both counts in one substitution.
export N=$n M=$m
sentence='(Runs finished:\s+)\d+(\s+of\s+the\s+\d+\s+classification\s+runs\s+and\s+)\d+(\s+of\s+the\s+\d+\s+adaptation\s+runs)'
# One pass: substitute, and exit 1 when nothing matched (the file is then written back unchanged).
perl -0pi -e "\$hit += s/$sentence/\${1}\$ENV{N}\${2}\$ENV{M}\${3}/; END { exit(\$hit ? 0 : 1) }" "$readme" ||
  { echo "README has no 'Runs finished: …' sentence" >&2; exit 1; }
echo "README: study rows copied from $verdicts; $n classification and $m adaptation runs finished"
