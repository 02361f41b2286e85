// libbpf relocates a program's instructions (map fds, CO-RE, subprograms)
// inside bpf_object__load(), just before the kernel sees them; the one place
// to change them then is a section handler's prepare-load callback. So the
// bare section names of the policy engine's programs get handlers that do
// what libbpf's own do for them (program and attach type, auto-attach of BTF
// tracing programs and named raw tracepoints), plus: when a load runs under
// a LoadTransformScope, hand the instructions to JavaScript and take back
// what it returns. TypeScript decides what to change (src/bpf/inline-constants.ts).
#include "load_transform.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>

namespace tally {

static LoadTransformScope* current = nullptr;

LoadTransformScope::LoadTransformScope(Napi::Env env, bpf_object* obj, Napi::Function transform)
    : env_(env), obj_(obj), transform_(transform), previous_(current) {
  current = this;
}

LoadTransformScope::~LoadTransformScope() { current = previous_; }

static bpf_map* RodataOf(bpf_object* obj) {
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const char* n = bpf_map__name(map);
    size_t len = strlen(n);
    if (bpf_map__is_internal(map) && len >= 7 && strcmp(n + len - 7, ".rodata") == 0) return map;
  }
  return nullptr;
}

int RunLoadTransform(bpf_program* prog) {
  LoadTransformScope* s = current;
  if (!s) return 0;
  Napi::Env env = s->env_;
  Napi::HandleScope scope(env);
  size_t n = bpf_program__insn_cnt(prog);
  size_t bytes = n * sizeof(bpf_insn);
  Napi::Value rodata = env.Null();
  if (bpf_map* ro = RodataOf(s->obj_)) {
    size_t size = 0;
    const void* data = bpf_map__initial_value(ro, &size);
    Napi::Object r = Napi::Object::New(env);
    r.Set("fd", bpf_map__fd(ro));
    r.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(data), data ? size : 0));
    rodata = r;
  }
  Napi::Value out;
  try {
    out = s->transform_.Call({Napi::String::New(env, bpf_program__name(prog)),
                              Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(bpf_program__insns(prog)), bytes),
                              rodata});
  } catch (const Napi::Error& e) {
    s->error_ = e.Message();
    return -EINVAL;
  }
  if (out.IsUndefined()) return 0;
  if (!out.IsBuffer() || out.As<Napi::Buffer<uint8_t>>().Length() != bytes) {
    s->error_ = std::string("transform of ") + bpf_program__name(prog) + " must return undefined or as many instruction bytes as it was given";
    return -EINVAL;
  }
  // Same count: libbpf's line and function info stay valid.
  auto b = out.As<Napi::Buffer<uint8_t>>();
  return bpf_program__set_insns(prog, reinterpret_cast<bpf_insn*>(b.Data()), n);
}

static int Prepare(bpf_program* prog, bpf_prog_load_opts* opts, long cookie) { return RunLoadTransform(prog); }

// What libbpf's attach_trace and attach_raw_tp do for these sections.
static int AttachTrace(const bpf_program* prog, long cookie, bpf_link** link) {
  *link = bpf_program__attach_trace(prog);
  return *link ? 0 : -errno;
}

static int AttachRawTpByName(const bpf_program* prog, long cookie, bpf_link** link) {
  const char* name = strchr(bpf_program__section_name(prog), '/');
  *link = bpf_program__attach_raw_tracepoint(prog, name + 1);
  return *link ? 0 : -errno;
}

// As libbpf's: these program types take no expected attach type.
static const bpf_attach_type kNoAttachType = static_cast<bpf_attach_type>(0);

void RegisterLoadTransformHandlers() {
  static bool done = false;
  if (done) return;
  done = true;
  struct Handler {
    const char* sec;
    bpf_prog_type type;
    bpf_attach_type attach;
    libbpf_prog_attach_fn_t attach_fn;
  };
  // Exact names: a section with a target (tp_btf/sched_process_exec, ...)
  // still gets libbpf's own handler. The bare kprobe, uprobe, tracepoint and
  // raw_tp sections cannot auto-attach, with libbpf's handlers or these.
  static const Handler handlers[] = {
      {"kprobe", BPF_PROG_TYPE_KPROBE, kNoAttachType, nullptr},
      {"kretprobe", BPF_PROG_TYPE_KPROBE, kNoAttachType, nullptr},
      {"uprobe", BPF_PROG_TYPE_KPROBE, kNoAttachType, nullptr},
      {"uretprobe", BPF_PROG_TYPE_KPROBE, kNoAttachType, nullptr},
      {"tracepoint", BPF_PROG_TYPE_TRACEPOINT, kNoAttachType, nullptr},
      {"raw_tp", BPF_PROG_TYPE_RAW_TRACEPOINT, kNoAttachType, nullptr},
      {"raw_tp/sys_enter", BPF_PROG_TYPE_RAW_TRACEPOINT, kNoAttachType, AttachRawTpByName},
      {"raw_tp/sys_exit", BPF_PROG_TYPE_RAW_TRACEPOINT, kNoAttachType, AttachRawTpByName},
      {"tp_btf", BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, AttachTrace},
      {"fentry", BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, AttachTrace},
      {"fexit", BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, AttachTrace},
  };
  for (const Handler& h : handlers) {
    LIBBPF_OPTS(libbpf_prog_handler_opts, o, .prog_prepare_load_fn = Prepare, .prog_attach_fn = h.attach_fn);
    libbpf_register_prog_handler(h.sec, h.type, h.attach, &o);
  }
}

}  // namespace tally
