#!/bin/sh
# The kernel's module helper inside a kernel-matrix guest (guest-init.sh
# writes this path to /proc/sys/kernel/modprobe). The shared host root has no
# /lib/modules for the guest's kernel, so point modprobe at the extracted
# kernel tree named by tally.modules= on the kernel command line.
for arg in $(cat /proc/cmdline); do
  case "$arg" in tally.modules=*) exec modprobe -d "${arg#tally.modules=}" "$@" ;; esac
done
exec modprobe "$@"
