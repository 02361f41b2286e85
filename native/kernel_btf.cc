// What the running kernel's BTF says about a hook's arguments: how many a raw
// tracepoint passes (its btf_trace_<event> typedef) or a function takes.
// Tracepoint prototypes change between kernels (sched_process_exit gained
// group_dead and tcp_retransmit_skb its err after 6.12); a program that
// reads past the last one is refused at load (tp_btf) or attach (raw_tp), so
// user space asks first instead of assuming a layout.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <napi.h>

#include <string>

#include "errors.h"

namespace tally {

// btfArity(kind: 'tracepoint' | 'function', name, btfPath?) -> the number of
// arguments, or -1 when the kernel has no such tracepoint or function. The
// BTF is parsed for the call and freed: callers memoise per name, and keeping
// a parsed vmlinux (tens of MB) alive for a lookup at startup is not worth it.
static Napi::Value BtfArity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = info[0].As<Napi::String>();
  std::string name = info[1].As<Napi::String>();
  std::string path = info.Length() > 2 && info[2].IsString() ? std::string(info[2].As<Napi::String>()) : "";

  struct btf* b = path.empty() ? btf__load_vmlinux_btf() : btf__parse(path.c_str(), nullptr);
  int err = libbpf_get_error(b);
  if (err) {
    ErrnoError(env, "loading the kernel's BTF" + (path.empty() ? std::string() : " from " + path), -err)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int arity = -1;
  bool tracepoint = kind == "tracepoint";
  int id = tracepoint ? btf__find_by_name_kind(b, ("btf_trace_" + name).c_str(), BTF_KIND_TYPEDEF)
                      : btf__find_by_name_kind(b, name.c_str(), BTF_KIND_FUNC);
  if (id > 0) {
    const struct btf_type* t = btf__type_by_id(b, id);
    // typedef -> pointer -> func_proto for a tracepoint; func -> func_proto for a function.
    if (tracepoint) {
      t = btf__type_by_id(b, t->type);
      if (t && btf_is_ptr(t)) t = btf__type_by_id(b, t->type);
    } else {
      t = btf__type_by_id(b, t->type);
    }
    // A tracepoint's prototype starts with the tracepoint's own void *__data.
    if (t && btf_is_func_proto(t)) arity = btf_vlen(t) - (tracepoint ? 1 : 0);
  }
  btf__free(b);
  return Napi::Number::New(env, arity);
}

void InitKernelBtf(Napi::Env env, Napi::Object exports) {
  exports.Set("btfArity", Napi::Function::New(env, BtfArity));
}

}  // namespace tally
