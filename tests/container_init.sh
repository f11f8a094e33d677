#!/usr/bin/env bash
# First process of a rehearsal container (tests/container.py), run by
# `unshare --pid --fork --mount [--net]` as PID 1 of its namespaces: it builds the container's
# root file system and then execs the image's command, which stays PID 1.
#
# usage: container_init.sh build|run ROOTFS IMAGE UPPER HOSTS READY [HOST_DIR:PATH ...] -- CMD...
#   build  RUN steps of a Dockerfile: the image's /app, /opt and /root are written in place
#   run    a container: the image's dirs under a writable overlay layer in UPPER, the host's
#          /usr (read-only) as the operating system, a fresh /tmp; HOST_DIR:PATH are volumes
#   HOSTS  the network's hosts file (names and aliases), or -; READY: a file to wait for
#          before starting (the network is attached then), or -
set -euo pipefail
mode=$1 rootfs=$2 image=$3 upper=$4 hosts=$5 ready=$6
shift 6
volumes=()
while [ "$1" != "--" ]; do
  volumes+=("$1")
  shift
done
shift

mount --make-rprivate / # nothing below may reach the host's mount table
mount -t tmpfs -o mode=0755 rootfs "$rootfs"
for dir in usr etc dev sys; do
  mkdir "$rootfs/$dir"
  mount --rbind "/$dir" "$rootfs/$dir"
done
for dir in usr etc sys; do mount -o remount,bind,ro "$rootfs/$dir"; done
for link in bin lib lib64 sbin; do ln -s "usr/$link" "$rootfs/$link"; done
mkdir "$rootfs/proc" "$rootfs/tmp" "$rootfs/run" "$rootfs/var"
mount -t proc proc "$rootfs/proc" # this PID namespace's processes only
mount -t tmpfs -o mode=1777 tmp "$rootfs/tmp"
mount -t tmpfs run "$rootfs/run"
mount -t tmpfs var "$rootfs/var"
for dir in app opt root; do
  mkdir "$rootfs/$dir"
  if [ "$mode" = build ]; then
    mount --bind "$image/$dir" "$rootfs/$dir"
  else
    mkdir -p "$upper/$dir" "$upper/.work-$dir"
    mount -t overlay overlay \
      -o "lowerdir=$image/$dir,upperdir=$upper/$dir,workdir=$upper/.work-$dir" "$rootfs/$dir"
  fi
done
for volume in "${volumes[@]}"; do
  mkdir -p "$rootfs${volume#*:}"
  mount --bind "${volume%%:*}" "$rootfs${volume#*:}"
done
if [ "$hosts" != - ]; then mount --bind "$hosts" "$rootfs/etc/hosts"; fi
if [ "$ready" != - ]; then
  ip link set lo up
  while [ ! -e "$ready" ]; do sleep 0.05; done
fi
# WORKDIR /app (dockerfile_generation.rs:225); env execs the command, which keeps PID 1.
exec chroot "$rootfs" /usr/bin/env --chdir=/app "$@"
