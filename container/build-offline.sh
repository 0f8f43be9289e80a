#!/usr/bin/env bash
# Builds the hako-agent image without an image registry: a Debian rootfs from Debian
# packages (mmdebstrap), the host's Node binary, the agent app, then `docker import`.
# Produces the same layout as container/Dockerfile (see docs/ARCHITECTURE.md).
#
# Usage: container/build-offline.sh <tag> <source-hash> <node-binary> <repo-root>
#
# Environment (all optional):
#   HAKO_DEBIAN_MIRROR  Debian mirror (default http://deb.debian.org/debian); set a local
#                       mirror on air-gapped machines.
#   HAKO_ROOTFS_CACHE   directory where the Debian rootfs tarball is cached between builds
#                       (default ${XDG_CACHE_HOME:-$HOME/.cache}/hako/rootfs); "off" disables.
#                       The cache key covers the rootfs recipe, the suite and the mirror; an
#                       entry older than 7 days is rebuilt so security updates arrive.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 <tag> <source-hash> <node-binary> <repo-root>" >&2
  exit 2
fi
tag=$1
source_hash=$2
node_bin=$3
repo=$4

suite=bookworm
mirror=${HAKO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=git,curl,ripgrep,ca-certificates,bash,poppler-utils,graphicsmagick
cache_dir=${HAKO_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hako/rootfs}
steps=6
started=$SECONDS

step() { echo "[$1/$steps] $2"; }
fail() { echo "build-offline: $*" >&2; exit 1; }

# --- preconditions: say exactly what is missing --------------------------------------
[[ $(uname -s) == Linux ]] || fail "the offline build needs Linux (mmdebstrap); on other systems use the Dockerfile build"
declare -A debian_package=([mmdebstrap]=mmdebstrap [docker]=docker.io [tar]=tar [sha256sum]=coreutils)
for tool in "${!debian_package[@]}"; do
  command -v "$tool" >/dev/null ||
    fail "'$tool' is not installed (Debian/Ubuntu: apt-get install ${debian_package[$tool]})"
done
[[ -x $node_bin ]] || fail "node binary '$node_bin' is not executable"
node_version=$("$node_bin" --version) || fail "'$node_bin --version' failed"
[[ ${node_version#v} =~ ^([0-9]+)\. && ${BASH_REMATCH[1]} -ge 24 ]] || fail "node binary '$node_bin' is $node_version; Node 24 or newer is needed"
for dir in agent protocol; do
  [[ -d $repo/$dir ]] || fail "'$repo/$dir' is missing"
done
[[ -f $repo/container/app-package.json ]] || fail "'$repo/container/app-package.json' is missing"
[[ -f $repo/container/fill-compile-cache.mjs ]] || fail "'$repo/container/fill-compile-cache.mjs' is missing"
[[ $source_hash =~ ^[0-9a-f]{16}$ ]] || fail "source hash '$source_hash' is not 16 hex digits"

work=$(mktemp -d "${TMPDIR:-/tmp}/hako-image.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The npm copied below (for the agent's tools) is the one next to the Node we ship.
PATH="$(dirname "$node_bin"):$PATH"
export PATH

# --- 1. Debian rootfs -------------------------------------------------------------------
# Everything the image needs from Debian, plus the non-root user. Docs, man pages, locales,
# logs and apt caches are removed; mmdebstrap itself drops the package lists.
base_hook=$work/base-hook.sh
cat > "$base_hook" <<'HOOK'
#!/bin/sh
set -e
root=$1
echo "node:x:1000:1000::/home/node:/bin/bash" >> "$root/etc/passwd"
echo "node:x:1000:" >> "$root/etc/group"
echo "node:*:20000:0:99999:7:::" >> "$root/etc/shadow"
echo "node:*::" >> "$root/etc/gshadow"
install -d -o 1000 -g 1000 -m 0755 "$root/home/node"
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/usr/share/lintian "$root"/usr/share/bash-completion "$root"/var/cache/debconf/*-old \
  "$root"/var/lib/dpkg/*-old "$root"/var/cache/apt/*.bin
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$root/var/log" -type f -delete
HOOK
chmod +x "$base_hook"

mm_args=(--variant=minbase --include="$packages" --aptopt='APT::Install-Recommends "false"')
# The cache key covers everything that shapes the rootfs.
key=$( { cat "$base_hook"; echo "${mm_args[*]} $suite $mirror $(uname -m)"; } | sha256sum | cut -c1-16)
base_tar=$work/base.tar
cached=""
if [[ $cache_dir != off ]]; then
  cached=$cache_dir/$suite-$key.tar
fi

if [[ -n $cached && -f $cached && -n $(find "$cached" -mtime -7 2>/dev/null) ]]; then
  step 1 "debian rootfs: $suite from cache ($cached)"
  base_tar=$cached
else
  step 1 "debian rootfs: mmdebstrap $suite minbase + $packages from $mirror"
  # No --dpkgopt path filters: they make mmdebstrap run a filter process per package,
  # which doubles the build time; the hook deletes the same files afterwards.
  mmdebstrap "${mm_args[@]}" --customize-hook="$base_hook" "$suite" "$base_tar" "$mirror"
  if [[ -n $cached ]]; then
    mkdir -p "$cache_dir"
    cp "$base_tar" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"
    find "$cache_dir" -maxdepth 1 -name "$suite-*.tar" ! -path "$cached" -delete
    echo "cached the rootfs at $cached"
  fi
fi

# --- 2. Node (and npm, when the host has one) -----------------------------------------
stage=$work/stage
step 2 "node $node_version from $node_bin"
install -d "$stage/usr/local/bin"
install -m 0755 "$node_bin" "$stage/usr/local/bin/node"
extra=()
npm_cli=$(command -v npm || true)
[[ -n $npm_cli ]] && npm_cli=$(readlink -f "$npm_cli")
npm_dir=$(dirname "$(dirname "${npm_cli:-/none/bin/npm}")")
if [[ -n $npm_cli && -f $npm_dir/package.json && $(basename "$npm_dir") == npm ]]; then
  install -d "$stage/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$stage/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
  extra+=(./usr/local/lib/node_modules ./usr/local/bin/npm ./usr/local/bin/npx)
  echo "npm $(npm --version) from $npm_dir"
else
  echo "no npm package found next to '$npm_cli'; the image will have no npm"
fi

# --- 3. the agent app ------------------------------------------------------------------
step 3 "app: /app (agent, protocol; no npm package, as in the Dockerfile)"
app=$stage/app
install -d "$app"
install -m 0644 "$repo/container/app-package.json" "$app/package.json"
tar -C "$repo" --exclude=node_modules -cf - agent protocol | tar -C "$app" -xf -
install -d -m 0755 "$stage/workspace/group" "$stage/workspace/global" "$stage/ipc" "$stage/run/hako"

# --- 4. assemble ------------------------------------------------------------------------
step 4 "assemble: rootfs + node + app"
rootfs=$work/rootfs.tar
cp "$base_tar" "$rootfs"
# Appended paths are all new in the rootfs, so no entry is shadowed. Everything is owned
# by root and read-only for other users: the agent cannot change its own code.
tar --append -f "$rootfs" -C "$stage" --owner=0 --group=0 --numeric-owner \
  --mode='u+rwX,go+rX,go-w' \
  ./usr/local/bin/node ./app ./workspace ./ipc ./run/hako "${extra[@]}"
echo "rootfs tarball: $(( $(stat -c %s "$rootfs") / 1048576 )) MiB"

# --- 5. compile cache ---------------------------------------------------------------------
# Same as the Dockerfile: every agent module's compile cache, filled as the agent's uid
# (Node keys the cache by uid) in a throwaway import of this very rootfs, then added to it
# owned by root and read-only.
step 5 "compile cache: load every agent module once as uid 1000"
fill_tag=hako-agent-fill:$source_hash
cache=$work/compile-cache
install -d -o 1000 -g 1000 "$cache"
docker import --message "hako compile-cache fill ($source_hash)" "$rootfs" "$fill_tag" >/dev/null
trap 'docker rmi -f "$fill_tag" >/dev/null 2>&1 || true; cleanup' EXIT
docker run --rm --network none --user 1000:1000 \
  -e NODE_COMPILE_CACHE=/app/.compile-cache -e HOME=/tmp -e NODE_ENV=production \
  -v "$cache:/app/.compile-cache" -v "$repo/container/fill-compile-cache.mjs:/tmp/fill-compile-cache.mjs:ro" \
  "$fill_tag" /usr/local/bin/node --preserve-symlinks /tmp/fill-compile-cache.mjs /app
docker rmi -f "$fill_tag" >/dev/null
mv "$cache" "$stage/app/.compile-cache"
tar --append -f "$rootfs" -C "$stage" --owner=0 --group=0 --numeric-owner \
  --mode='u+rwX,go+rX,go-w' ./app/.compile-cache

# --- 6. import --------------------------------------------------------------------------
step 6 "docker import as $tag"
docker import \
  --change 'USER 1000:1000' \
  --change 'WORKDIR /workspace/group' \
  --change 'ENTRYPOINT ["node", "--preserve-symlinks", "/app/agent/main.ts"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_ENV=production' \
  --change 'ENV HOME=/tmp' \
  --change 'ENV NODE_COMPILE_CACHE=/app/.compile-cache' \
  --change "LABEL hako.source-hash=$source_hash" \
  --change 'LABEL hako.build=offline' \
  --message "hako offline build ($source_hash)" \
  "$rootfs" "$tag"
echo "built $tag in $((SECONDS - started)) s"
