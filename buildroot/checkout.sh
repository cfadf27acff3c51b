#!/usr/bin/env bash
# The Buildroot tree `make buildroot-image` builds with: a git clone of the
# pinned release tag, accepted only when its HEAD is the pinned commit.
#
#   buildroot/checkout.sh URL TAG COMMIT DIR
#
# DIR missing: clone TAG from URL (shallow) into a scratch directory beside
# it, refuse it unless HEAD is COMMIT, then move it to DIR. DIR present (the
# cached tree of an earlier build): refuse it unless it is a git checkout
# whose HEAD is COMMIT with no tracked file changed. The commit id is what is
# trusted, not the server or the tag: a tag can be moved, a commit id names
# one tree (git's SHA-1 with collision detection).
set -euo pipefail
me=buildroot-image
die() { echo "$me: $*" >&2; exit 1; }
[ $# -eq 4 ] || die "usage: buildroot/checkout.sh URL TAG COMMIT DIR"
url=$1 tag=$2 commit=$3 dir=$4
[[ $commit =~ ^[0-9a-f]{40}$ ]] || die "BUILDROOT_COMMIT '$commit' is not a commit id (40 hex digits)"
command -v git >/dev/null || die "git is not installed (apt-get install git)"

# HEAD of the repository at $1 itself (never of a repository that contains it)
head_of() { [ -e "$1/.git" ] && git --git-dir="$1/.git" --work-tree="$1" rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null || true; }

if [ -e "$dir" ]; then
  got=$(head_of "$dir")
  [ -n "$got" ] || die "$dir is not a git checkout of Buildroot: refusing it (remove it to clone $tag again, or set BUILDROOT_DIR to use a tree of your own)"
  [ "$got" = "$commit" ] ||
    die "$dir is at commit $got, Buildroot $tag is pinned at $commit (buildroot/buildroot.mk): refusing it (remove it to clone again)"
  changed=$(git --git-dir="$dir/.git" --work-tree="$dir" status --porcelain --untracked-files=no)
  [ -z "$changed" ] || die "$dir has local changes to Buildroot's own files: refusing it (remove it to clone again):
$changed"
  exit 0
fi

case $url in
  http://* | https://*)
    curl --max-time 10 -sSI -o /dev/null "$url/info/refs?service=git-upload-pack" 2>/dev/null ||
      die "$url is not reachable (no internet?): the Buildroot path clones Buildroot and downloads every package's source. Offline, use 'make image'; with a Buildroot tree at hand, BUILDROOT_DIR=/path/to/buildroot." ;;
esac

mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$dir.clone.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "$me: cloning Buildroot $tag from $url"
# file:// so a local repository is cloned as a remote one (--depth applies)
src=$url
case $url in /*) src=file://$url ;; esac
git -c advice.detachedHead=false clone -q --depth 1 --branch "$tag" "$src" "$tmp/tree" ||
  die "git clone --branch $tag $url failed"
got=$(head_of "$tmp/tree")
[ "$got" = "$commit" ] ||
  die "$url tag $tag is commit ${got:-(none)}, buildroot/buildroot.mk pins $commit: refusing it"
mv "$tmp/tree" "$dir"
echo "$me: Buildroot $tag at $commit in $dir"
