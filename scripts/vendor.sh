#!/usr/bin/env bash
# vendor/ is generated: the pristine crates.io sources of the crates named in
# vendor/patches/crates, with the patches listed in vendor/patches/series
# applied in order. Nobody edits vendor/<crate>/ by hand; change a patch and
# run this script.
#
#   scripts/vendor.sh                 rewrite vendor/<crate>/ from pristine + series
#   scripts/vendor.sh --check         fail (and show the difference) unless
#                                     vendor/ is byte for byte pristine + series
#                                     (VENDOR_DIR=dir checks a copy instead)
#   scripts/vendor.sh --worktree DIR  a git repository in DIR: one commit with
#                                     the pristine crates, then one commit per
#                                     patch (its header as the message), for
#                                     editing the series with git (rebase -i,
#                                     commit --fixup, a new pingora version...)
#   scripts/vendor.sh --export DIR    write the commits of DIR after the first
#                                     back as vendor/patches/ (series included)
#
# Rebasing onto a new pingora release: change the versions and checksums in
# vendor/patches/crates, run `--worktree DIR` (it stops at the first patch
# that no longer applies and says which), fix that patch in DIR, `--export
# DIR`, run the script without arguments, and run the tests.
#
# The .crate files come from cargo's own download cache when it has them,
# else from static.crates.io (curl); each is checked against the sha256 in
# vendor/patches/crates (the checksum crates.io publishes in its index).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
patches=vendor/patches

die() { echo "vendor.sh: $*" >&2; exit 1; }

# crate version sha256, one per line ('#' comments allowed)
crates() { grep -v '^\s*\(#\|$\)' "$patches/crates"; }
# patch file names in order ('#' comments allowed)
series() { grep -v '^\s*\(#\|$\)' "$patches/series"; }

cache_dir=${RAMPART_VENDOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rampart-vendor}

# Prints the path of a verified .crate file for $1 $2 with checksum $3.
fetch_crate() {
  local name=$1 version=$2 sum=$3 file
  for file in "$cache_dir/$name-$version.crate" \
    "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate"; do
    if [ -f "$file" ] && echo "$sum  $file" | sha256sum -c --status; then
      echo "$file"
      return
    fi
  done
  command -v curl >/dev/null || die "curl is needed to download $name $version"
  mkdir -p "$cache_dir"
  file="$cache_dir/$name-$version.crate"
  curl -sSfL --retry 3 -o "$file.part" \
    "https://static.crates.io/crates/$name/$name-$version.crate" ||
    die "could not download $name $version from static.crates.io"
  echo "$sum  $file.part" | sha256sum -c --status ||
    die "$name $version: checksum mismatch (expected $sum)"
  mv "$file.part" "$file"
  echo "$file"
}

# Extracts the pristine crates into $1 as $1/<name>/.
extract_pristine() {
  local out=$1 name version sum
  while read -r name version sum; do
    tar -xzf "$(fetch_crate "$name" "$version" "$sum")" -C "$out"
    mv "$out/$name-$version" "$out/$name"
  done < <(crates)
}

# Applies one patch inside $1 (paths in patches are relative to vendor/).
apply_patch() {
  local dir=$1 patch=$2
  (cd "$dir" && git apply --whitespace=nowarn -p1 "$root/$patches/$patch") ||
    die "$patch does not apply (see above); fix it with --worktree"
}

# Builds pristine + series into $1.
build_tree() {
  local out=$1 p
  extract_pristine "$out"
  while read -r p; do apply_patch "$out" "$p"; done < <(series)
}

# The patch file's header: everything before its first `diff --git`.
header() { sed '/^diff --git /,$d' "$1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "${1:-}" in
  "")
    build_tree "$tmp"
    while read -r name _; do
      rm -rf "vendor/$name"
      cp -a "$tmp/$name" "vendor/$name"
    done < <(crates)
    echo "vendor/ rebuilt: $(crates | wc -l) crates, $(series | wc -l) patches"
    ;;
  --check)
    build_tree "$tmp"
    checked=${VENDOR_DIR:-vendor}
    status=0
    # every directory but patches/ must be a listed crate
    for d in "$checked"/*/; do
      d=$(basename "$d")
      [ "$d" = patches ] && continue
      crates | awk '{print $1}' | grep -qx "$d" ||
        { echo "$checked/$d is not in $patches/crates" >&2; status=1; }
    done
    while read -r name _; do
      if ! diff -r --no-dereference "$tmp/$name" "$checked/$name" >/dev/null 2>&1; then
        echo "$checked/$name differs from pristine + series:" >&2
        diff -ruN --no-dereference "$tmp/$name" "$checked/$name" | head -60 >&2 || true
        status=1
      fi
    done < <(crates)
    [ $status = 0 ] || die "$checked is not pristine + series: edit a patch, then run scripts/vendor.sh"
    echo "$checked is pristine + $(series | wc -l) patches"
    ;;
  --worktree)
    dir=${2:?usage: --worktree DIR}
    [ ! -e "$dir" ] || die "$dir exists"
    mkdir -p "$dir"
    extract_pristine "$dir"
    git -C "$dir" init -q
    git -C "$dir" add -A
    git -C "$dir" -c user.name=vendor -c user.email=vendor@localhost commit -qm "pristine crates"
    while read -r p; do
      apply_patch "$dir" "$p"
      git -C "$dir" add -A
      header "$patches/$p" | git -C "$dir" -c user.name=vendor -c user.email=vendor@localhost \
        commit -q --cleanup=verbatim -F -
    done < <(series)
    echo "$dir: pristine + $(series | wc -l) commits"
    ;;
  --export)
    dir=${2:?usage: --export DIR}
    first=$(git -C "$dir" rev-list --max-parents=0 HEAD)
    rm -f "$patches"/*.patch
    : >"$tmp/series"
    n=0
    for c in $(git -C "$dir" rev-list --reverse "$first"..HEAD); do
      n=$((n + 1))
      # the file name: the number and the first line of the header's title
      slug=$(git -C "$dir" log -1 --format=%s "$c" | sed -E 's/^#+ *//; s/[^A-Za-z0-9]+/-/g; s/^-|-$//g' |
        tr 'A-Z' 'a-z' | cut -c1-60 | sed 's/-$//')
      file=$(printf '%04d-%s.patch' "$n" "$slug")
      { git -C "$dir" log -1 --format=%B "$c" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
        echo
        git -C "$dir" diff --no-color --no-renames "$c~1" "$c"
      } >"$patches/$file"
      echo "$file" >>"$tmp/series"
    done
    cp "$tmp/series" "$patches/series"
    echo "exported $n patches to $patches/"
    ;;
  *)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
