#!/usr/bin/env bash
# The main job end to end on the built-in local store: no server, no config needed.
# Runs in a throwaway clone so this working copy stays clean.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pantri="node $here/bin/pantri.js"
work=$(mktemp -d "${TMPDIR:-/tmp}/pantri-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

say "A packager's repo with a demo shelf (pushed to a bare origin)"
git init -q --bare -b main "$work/origin.git"
git init -q -b main "$work/packager"
cd "$work/packager"
git config user.name "pantri demo"; git config user.email demo@example.invalid; git config commit.gpgsign false
mkdir -p shelves/demo/tools
cp "$here/shelves/demo/README.txt" shelves/demo/
git add -A && git commit -qm "demo shelf" && git remote add origin "$work/origin.git" && git push -qu origin main

say "Binaries appear: two packages and an image (random bytes)"
head -c 3000000 /dev/urandom > shelves/demo/app-1.0.deb
head -c 1000000 /dev/urandom > shelves/demo/tools/helper.pkg
head -c 200000 /dev/urandom > shelves/demo/disk.img
echo "release notes stay in git" > shelves/demo/NOTES.txt
git add shelves/demo/NOTES.txt && git commit -qm "release notes"  # text files stay in git as they are

say "pantri store --push: upload to .pantri/store, write pointers, git-ignore binaries, commit"
$pantri store --push
git log --oneline -1 >&2
git show --stat HEAD >&2
echo "pointer for app-1.0.deb:" >&2; cat shelves/demo/app-1.0.deb.pitem >&2
# A build host needs the objects: share the packager's local store (a real fleet uses swift or s3).
store_dir="$work/packager/.pantri/store"

say "A build host clones the repo and retrieves the shelf (JSON report on stdout)"
git clone -q "$work/origin.git" "$work/buildhost"
cd "$work/buildhost"
git config user.name "pantri demo"; git config user.email demo@example.invalid
echo '{ "objectStore": { "type": "local", "path": "'"$store_dir"'" } }' > "$work/buildhost.json"
$pantri --config "$work/buildhost.json" retrieve -s demo -d "$work/dest" --json
find "$work/dest" -type f | sort >&2

say "The packager replaces one package and removes another"
cd "$work/packager"
head -c 500000 /dev/urandom > shelves/demo/app-1.0.deb
rm shelves/demo/disk.img && git rm -q shelves/demo/disk.img.pitem
git commit -qm "drop disk.img"
$pantri store --push

say "The build host retrieves again: only the change is downloaded, the removal applied"
cd "$work/buildhost"
$pantri --config "$work/buildhost.json" retrieve -s demo -d "$work/dest"
find "$work/dest" -type f | sort >&2

say "Nothing changed: a no-op retrieve, then status and verify"
$pantri --config "$work/buildhost.json" retrieve -s demo -d "$work/dest"
$pantri --config "$work/buildhost.json" verify -s demo -d "$work/dest"
say "Done: every retrieved file was verified against its pointer's sha256."
