/* SPDX-License-Identifier: Apache-2.0 */
/* Metric ids of tcp_bytes.bpf.c, shared with user space through the addon. */
#ifndef TALLY_TCP_BYTES_H
#define TALLY_TCP_BYTES_H

enum tcp_bytes_metric {
	TCP_BYTES_SENT = 0,
	TCP_BYTES_RECEIVED = 1,
};

#endif
