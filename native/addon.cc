// tally's native binding: a thin layer over the vendored libbpf. TypeScript
// validates and decides; these functions make the syscalls and report errno
// and libbpf's log lines exactly.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <napi.h>

#include "bpf_object.h"
#include "errors.h"

namespace tally {
void InitMapOps(Napi::Env env, Napi::Object exports);
void InitCgroup(Napi::Env env, Napi::Object exports);
void InitLayout(Napi::Env env, Napi::Object exports);
void InitKernelBtf(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitPins(Napi::Env env, Napi::Object exports);
Napi::Function InitRingBuffer(Napi::Env env);

static Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) {
    ErrnoError(info.Env(), "libbpf_num_possible_cpus", n).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), n);
}

// enableBpfStats() -> an fd; the kernel counts every program's run time and
// run count while any such fd is open (BPF_ENABLE_STATS), without touching the
// kernel.bpf_stats_enabled sysctl other tools may own. Close it with closeFd.
static Napi::Value EnableBpfStats(const Napi::CallbackInfo& info) {
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) {
    ErrnoError(info.Env(), "bpf_enable_stats", errno).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfLogger();
  exports.Set("libbpfVersion", Napi::String::New(env, std::to_string(libbpf_major_version()) + "." +
                                                          std::to_string(libbpf_minor_version())));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("enableBpfStats", Napi::Function::New(env, EnableBpfStats));
  Napi::Function bpf_object = BpfObject::Init(env);
  bpf_object.Set("openAsync", Napi::Function::New(env, BpfObject::OpenAsync));
  exports.Set("BpfObject", bpf_object);
  exports.Set("RingBuffer", InitRingBuffer(env));
  InitMapOps(env, exports);
  InitCgroup(env, exports);
  InitLayout(env, exports);
  InitKernelBtf(env, exports);
  InitProcess(env, exports);
  InitPins(env, exports);
  return exports;
}

}  // namespace tally

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return tally::Init(env, exports); }

NODE_API_MODULE(tally_native, InitModule)
