#!/usr/bin/env bash
# Install qemu-system-arm (for the QEMU board seeder) without removing any installed package.
# Debian 12's own qemu-system-arm (7.2) would remove an installed qemu-utils from backports, so
# take it from bookworm-backports, added with the same mirror and components as the configured
# bookworm source. Idempotent; does nothing when qemu-system-arm exists. Needs root and apt-get.
set -euo pipefail
command -v qemu-system-arm >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing qemu-system-arm and cannot apt-get install it (not root?)" >&2
  exit 1
fi
list=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqsE '(^|[[:space:]])bookworm-backports([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # The mirror and components of the `bookworm` suite: deb822 (.sources) or one-line format.
  read -r mirror components < <(
    {
      for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN{RS=""} /(^|\n)Suites:[^\n]*[[:space:]]bookworm([[:space:]]|$)/ && /(^|\n)Types:[^\n]*deb([[:space:]]|$)/ {
               u=""; c=""; n=split($0, l, "\n")
               for (i = 1; i <= n; i++) {
                 if (l[i] ~ /^URIs:/) { sub(/^URIs:[[:space:]]*/, "", l[i]); split(l[i], w, " "); u=w[1] }
                 if (l[i] ~ /^Components:/) { sub(/^Components:[[:space:]]*/, "", l[i]); c=l[i] }
               }
               if (u != "") print u, c }' "$f"
      done
      cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                           if ($(i+1) == "bookworm") { c = ""; for (j = i+2; j <= NF; j++) c = c " " $j; print $i, c } }'
    } | head -n 1)
  if [ -z "${mirror:-}" ]; then
    echo "no bookworm source configured: cannot add bookworm-backports" >&2
    exit 1
  fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: %s\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" "${components:-main}" >"$list"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports --no-install-recommends qemu-system-arm >/dev/null
