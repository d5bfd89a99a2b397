# shellcheck shell=bash
# One section of BENCHMARKS.md per benchmark script, so that running one
# benchmark never erases another's results (or the notes written around
# them). A section lies between `<!-- bench:NAME -->` and
# `<!-- /bench:NAME -->`; it is replaced in place, or appended when absent.
# Source this file, then: write_section NAME FILE_WITH_THE_NEW_TEXT

write_section() {
  local name=$1 body=$2 target=${BENCHMARKS_FILE:-BENCHMARKS.md}
  local begin="<!-- bench:$name -->" end="<!-- /bench:$name -->"
  local tmp="$target.tmp.$$"
  [ -f "$target" ] || printf '# Benchmarks\n' >"$target"
  if grep -qxF "$begin" "$target" && grep -qxF "$end" "$target"; then
    awk -v begin="$begin" -v end="$end" -v body="$body" '
      $0 == begin { print; while ((getline line < body) > 0) print line; skip = 1; next }
      $0 == end { skip = 0 }
      !skip { print }
    ' "$target" >"$tmp"
  else
    { cat "$target"; printf '\n%s\n' "$begin"; cat "$body"; printf '%s\n' "$end"; } >"$tmp"
  fi
  mv "$tmp" "$target"
}
