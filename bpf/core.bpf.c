// SPDX-License-Identifier: GPL-2.0
/*
 * The core object: loaded first, it creates the maps every counting object
 * shares (counters, overflow entries, label sets, binaries; see the headers
 * below). It runs no program: policy hooks (policy.bpf.c) reuse these maps,
 * and each announces a binary the first time one of its events carries it.
 * (An exec hook here used to announce every new binary at exec; that cost
 * every exec a program run for what the first counted event does anyway.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "tally_types.h"
#include "counters.bpf.h"
#include "binary.bpf.h"
#include "label_sets.bpf.h"

char LICENSE[] SEC("license") = "GPL";
