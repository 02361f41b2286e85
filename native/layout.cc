// Publishes the layout of bpf/tally_types.h to JavaScript, so the decoders in
// src/bpf/layout.ts are checked against the one shared header at startup.
#include <napi.h>
#include <stddef.h>

#include "tally_types.h"
#include "cgroup_events.h"
#include "policy.h"
#include "chain.h"

namespace tally {

// A struct as JavaScript sees it: its size, then FIELD() for each offset it reads.
#define STRUCT(obj, type)                       \
  Napi::Object obj = Napi::Object::New(env);    \
  obj.Set("size", sizeof(type))
#define FIELD(obj, type, field) obj.Set(#field, Napi::Number::New(env, offsetof(type, field)))

void InitLayout(Napi::Env env, Napi::Object exports) {
  Napi::Object layout = Napi::Object::New(env);

  STRUCT(key, tally_counter_key);
  FIELD(key, tally_counter_key, cgroup_id);
  FIELD(key, tally_counter_key, binary_id);
  FIELD(key, tally_counter_key, labels);
  FIELD(key, tally_counter_key, metric);
  FIELD(key, tally_counter_key, flags);
  FIELD(key, tally_counter_key, bucket);
  layout.Set("counterKey", key);

  STRUCT(mapping, tally_cgroup_mapping);
  FIELD(mapping, tally_cgroup_mapping, label_set);
  FIELD(mapping, tally_cgroup_mapping, namespace_id);
  layout.Set("cgroupMapping", mapping);

  STRUCT(lsc, tally_label_set_cache);
  FIELD(lsc, tally_label_set_cache, generation);
  layout.Set("labelSetCache", lsc);

  STRUCT(fast, tally_fast_entry);
  FIELD(fast, tally_fast_entry, key);
  FIELD(fast, tally_fast_entry, check);
  layout.Set("fastEntry", fast);

  STRUCT(ev, tally_binary_event);
  FIELD(ev, tally_binary_event, binary_id);
  FIELD(ev, tally_binary_event, path_len);
  FIELD(ev, tally_binary_event, truncated);
  FIELD(ev, tally_binary_event, path);
  layout.Set("binaryEvent", ev);

  Napi::Object c = Napi::Object::New(env);
  c.Set("TALLY_KEY_RAW_CGROUP", TALLY_KEY_RAW_CGROUP);
  c.Set("TALLY_KEY_OVERFLOW", TALLY_KEY_OVERFLOW);
  c.Set("TALLY_KEY_LABEL_SET", TALLY_KEY_LABEL_SET);
  c.Set("TALLY_KEY_NS_PENDING", TALLY_KEY_NS_PENDING);
  c.Set("TALLY_KEY_PENDING_SHIFT", TALLY_KEY_PENDING_SHIFT);
  c.Set("TALLY_BINARY_NONE", Napi::BigInt::New(env, static_cast<uint64_t>(TALLY_BINARY_NONE)));
  c.Set("TALLY_STAT_MAP_FULL", static_cast<uint32_t>(TALLY_STAT_MAP_FULL));
  c.Set("TALLY_STAT_LOST", static_cast<uint32_t>(TALLY_STAT_LOST));
  c.Set("TALLY_STAT_BINARY_EVENT_DROPS", static_cast<uint32_t>(TALLY_STAT_BINARY_EVENT_DROPS));
  c.Set("TALLY_STAT_PATH_TRUNCATED", static_cast<uint32_t>(TALLY_STAT_PATH_TRUNCATED));
  c.Set("TALLY_STAT__COUNT", static_cast<uint32_t>(TALLY_STAT__COUNT));
  c.Set("TALLY_ANNOUNCED_SLOTS", TALLY_ANNOUNCED_SLOTS);
  c.Set("TALLY_FAST_SLOTS", TALLY_FAST_SLOTS);
  c.Set("TALLY_FAST_PROBES", TALLY_FAST_PROBES);
  c.Set("TALLY_BUCKETS", TALLY_BUCKETS);
  c.Set("TALLY_BUCKET_SUM", TALLY_BUCKET_SUM);
  c.Set("TALLY_BUCKET_ZERO", TALLY_BUCKET_ZERO);
  c.Set("TALLY_LATENCY_SHIFT", TALLY_LATENCY_SHIFT);
  c.Set("TALLY_PEER_UNKNOWN", TALLY_PEER_UNKNOWN);
  layout.Set("constants", c);

  STRUCT(peer, tally_peer_key);
  FIELD(peer, tally_peer_key, prefixlen);
  FIELD(peer, tally_peer_key, addr);
  layout.Set("peerKey", peer);

  // Not among "constants": those sign the handover state, and a chain's
  // shape does not change what the counters mean.
  Napi::Object chain = Napi::Object::New(env);
  chain.Set("slots", TALLY_CHAIN_SLOTS);
  chain.Set("length", TALLY_CHAIN_LENGTH);
  layout.Set("chain", chain);

  STRUCT(cg, tally_cgroup_event);
  FIELD(cg, tally_cgroup_event, cgroup_id);
  FIELD(cg, tally_cgroup_event, path);
  layout.Set("cgroupEvent", cg);

  // bpf/policy.h: sizes and the offsets the encoder in src/engine/hook-config.ts relies on.
  Napi::Object pol = Napi::Object::New(env);
  pol.Set("config", sizeof(tally_pol_config));
  pol.Set("config_syscall_nr", offsetof(tally_pol_config, syscall_nr));
  pol.Set("config_args", offsetof(tally_pol_config, args));
  pol.Set("config_selectors", offsetof(tally_pol_config, selectors));
  pol.Set("config_metrics", offsetof(tally_pol_config, metrics));
  pol.Set("config_match_namespaces", offsetof(tally_pol_config, match_namespaces));
  pol.Set("config_fexit_ret_slot", offsetof(tally_pol_config, fexit_ret_slot));
  pol.Set("config_ret_size", offsetof(tally_pol_config, ret_size));
  pol.Set("arg", sizeof(tally_pol_arg));
  pol.Set("arg_index", offsetof(tally_pol_arg, index));
  pol.Set("arg_konst", offsetof(tally_pol_arg, konst));
  pol.Set("filter", sizeof(tally_pol_filter));
  pol.Set("filter_slot", offsetof(tally_pol_filter, slot));
  pol.Set("filter_values", offsetof(tally_pol_filter, values));
  pol.Set("selector", sizeof(tally_pol_selector));
  pol.Set("selector_filters", offsetof(tally_pol_selector, filters));
  pol.Set("selector_binaries", offsetof(tally_pol_selector, binaries));
  pol.Set("selector_namespaces", offsetof(tally_pol_selector, namespaces));
  pol.Set("namespaces", sizeof(tally_pol_namespaces));
  pol.Set("namespaces_values", offsetof(tally_pol_namespaces, values));
  pol.Set("selector_tasks", offsetof(tally_pol_selector, tasks));
  pol.Set("task_filter", sizeof(tally_pol_task_filter));
  pol.Set("task_filter_values", offsetof(tally_pol_task_filter, values));
  pol.Set("binaries", sizeof(tally_pol_binaries));
  pol.Set("label", sizeof(tally_pol_label));
  pol.Set("label_slot", offsetof(tally_pol_label, slot));
  pol.Set("label_cap", offsetof(tally_pol_label, cap));
  pol.Set("metric", sizeof(tally_pol_metric));
  pol.Set("metric_labels", offsetof(tally_pol_metric, labels));
  pol.Set("metric_pending_id", offsetof(tally_pol_metric, pending_id));
  pol.Set("lpm_key", sizeof(tally_pol_lpm_key));
  pol.Set("binary_key", sizeof(tally_pol_binary_key));
  pol.Set("seen_key", sizeof(tally_pol_seen_key));
  layout.Set("policy", pol);

  // bpf/policy.h: the caps and enum values the encoder writes as numbers.
  Napi::Object pc = Napi::Object::New(env);
#define CONSTANT(name) pc.Set(#name, Napi::Number::New(env, name))
  CONSTANT(TALLY_POL_ARGS);
  CONSTANT(TALLY_POL_SELECTORS);
  CONSTANT(TALLY_POL_FILTERS);
  CONSTANT(TALLY_POL_BINARIES);
  CONSTANT(TALLY_POL_VALUES);
  CONSTANT(TALLY_POL_TASKS);
  CONSTANT(TALLY_POL_TASK_VALUES);
  CONSTANT(TALLY_POL_METRICS);
  CONSTANT(TALLY_POL_LABELS);
  CONSTANT(TALLY_POL_STR);
  CONSTANT(TALLY_POL_NONE);
  CONSTANT(TALLY_SRC_NONE);
  CONSTANT(TALLY_SRC_REGS);
  CONSTANT(TALLY_SRC_CTX);
  CONSTANT(TALLY_SRC_RECORD);
  CONSTANT(TALLY_SRC_SYSCALL);
  CONSTANT(TALLY_SRC_CONST);
  CONSTANT(TALLY_SRC_GROUP_DEAD);
  CONSTANT(TALLY_SRC_USDT);
  CONSTANT(TALLY_SRC_PACKET);
  CONSTANT(TALLY_T_INT);
  CONSTANT(TALLY_T_UINT);
  CONSTANT(TALLY_T_STRING);
  CONSTANT(TALLY_T_FILE);
  CONSTANT(TALLY_T_PATH);
  CONSTANT(TALLY_T_FD);
  CONSTANT(TALLY_T_SOCK);
  CONSTANT(TALLY_T_SKB);
  CONSTANT(TALLY_T_SOCKADDR);
  CONSTANT(TALLY_T_TASK);
  CONSTANT(TALLY_T_BINPRM);
  CONSTANT(TALLY_T_SOCKET);
  CONSTANT(TALLY_T_NETDEV);
  CONSTANT(TALLY_T_PACKET);
  CONSTANT(TALLY_F_VALUE);
  CONSTANT(TALLY_F_SADDR);
  CONSTANT(TALLY_F_DADDR);
  CONSTANT(TALLY_F_SPORT);
  CONSTANT(TALLY_F_DPORT);
  CONSTANT(TALLY_F_PROTOCOL);
  CONSTANT(TALLY_F_FAMILY);
  CONSTANT(TALLY_F_FILE_TYPE);
  CONSTANT(TALLY_F_STRING);
  CONSTANT(TALLY_F_EXIT_STATUS);
  CONSTANT(TALLY_F_STRING_END);
  CONSTANT(TALLY_F_FS_MAGIC);
  CONSTANT(TALLY_OP_EQ);
  CONSTANT(TALLY_OP_NEQ);
  CONSTANT(TALLY_OP_GT);
  CONSTANT(TALLY_OP_LT);
  CONSTANT(TALLY_OP_MASK);
  CONSTANT(TALLY_OP_RANGE);
  CONSTANT(TALLY_OP_NOT_RANGE);
  CONSTANT(TALLY_OP_LPM);
  CONSTANT(TALLY_OP_NOT_LPM);
  CONSTANT(TALLY_OP_NOT_MASK);
  CONSTANT(TALLY_LABEL_NONE);
  CONSTANT(TALLY_LABEL_CAPPED);
  CONSTANT(TALLY_LABEL_PREFIX);
  CONSTANT(TALLY_LABEL_CONST);
  CONSTANT(TALLY_LABEL_BOUNDED);
  CONSTANT(TALLY_LABEL_PEER);
  CONSTANT(TALLY_VAL_COUNT);
  CONSTANT(TALLY_VAL_ARG);
  CONSTANT(TALLY_VAL_RETURN);
  CONSTANT(TALLY_VAL_LATENCY);
  CONSTANT(TALLY_WANT_FILE_TYPE);
  CONSTANT(TALLY_WANT_FS_MAGIC);
  CONSTANT(TALLY_TASK_NS_UTS);
  CONSTANT(TALLY_TASK_NS_IPC);
  CONSTANT(TALLY_TASK_NS_MNT);
  CONSTANT(TALLY_TASK_NS_PID);
  CONSTANT(TALLY_TASK_NS_PID_FOR_CHILDREN);
  CONSTANT(TALLY_TASK_NS_NET);
  CONSTANT(TALLY_TASK_NS_TIME);
  CONSTANT(TALLY_TASK_NS_TIME_FOR_CHILDREN);
  CONSTANT(TALLY_TASK_NS_CGROUP);
  CONSTANT(TALLY_TASK_NS_USER);
  CONSTANT(TALLY_TASK_CAP_EFFECTIVE);
  CONSTANT(TALLY_TASK_CAP_PERMITTED);
  CONSTANT(TALLY_TASK_CAP_INHERITABLE);
#undef CONSTANT
  layout.Set("policyConstants", pc);

  exports.Set("layout", layout);
}

}  // namespace tally
