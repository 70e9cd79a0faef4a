#!/usr/bin/env bash
# Unpack a Debian package's files into a project-local directory, without installing it and
# without root's package database:  sandbox/fetch_deb.sh PACKAGE DEST_DIR
#
# Prefers Debian sid's build (Pebble 2.10 there has ARI, profiles and EAB; lego 4.35), fetched
# with `apt-get download` against a temporary sources list signed by the Debian archive keyring,
# and falls back to the machine's own apt sources (bookworm: Pebble 2.4). Writes the chosen
# version to DEST_DIR/VERSION and the suite it came from to DEST_DIR/SUITE. Idempotent: an
# existing DEST_DIR/VERSION means done.
set -euo pipefail
pkg=${1:?usage: fetch_deb.sh PACKAGE DEST_DIR}
dest=${2:?usage: fetch_deb.sh PACKAGE DEST_DIR}
if [[ -f "$dest/VERSION" ]]; then
  echo "$pkg $(cat "$dest/VERSION") already in $dest"
  exit 0
fi
command -v apt-get >/dev/null || { echo "fetch_deb.sh: needs apt-get (Debian/Ubuntu); or set PEBBLE_BIN_DIR" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb"
chmod -R a+rwx "$work"   # apt's _apt sandbox user writes the downloads

fetch_from_sid() {
  [[ -z ${FETCH_DEB_NO_SID:-} ]] || return 1   # FETCH_DEB_NO_SID=1 exercises the fallback
  [[ -f $keyring ]] || return 1
  echo "deb [signed-by=$keyring] http://deb.debian.org/debian sid main" >"$work/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
              -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -qq)
  apt-get "${opts[@]}" update >&2 || return 1
  (cd "$work/deb" && apt-get "${opts[@]}" download "$pkg" >&2) || return 1
  echo sid
}

fetch_from_system() {
  if ! (cd "$work/deb" && apt-get -qq download "$pkg" >&2 2>/dev/null); then
    apt-get -qq update >&2 || true
    (cd "$work/deb" && apt-get -qq download "$pkg" >&2) || return 1
  fi
  echo system
}

suite=$(fetch_from_sid || true)
if [[ -z "$suite" ]]; then
  echo "fetch_deb.sh: sid's $pkg unavailable, falling back to this machine's apt sources" >&2
  rm -f "$work"/deb/*.deb
  suite=$(fetch_from_system) || { echo "fetch_deb.sh: could not download $pkg" >&2; exit 1; }
fi
deb=$(ls "$work"/deb/*.deb | head -n 1)
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
dpkg-deb -x "$deb" "$dest.tmp"
dpkg-deb -f "$deb" Version >"$dest.tmp/VERSION"
echo "$suite" >"$dest.tmp/SUITE"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$pkg $(cat "$dest/VERSION") ($suite) unpacked into $dest"
