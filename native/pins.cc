// Pinning in bpffs, for counters that outlive the agent (docs/restart.md):
// a pin is a file that holds a reference to a map or a link, so the kernel
// keeps it (and a link's program counting) after every fd is closed.
// TypeScript decides what to pin where; these calls only pin, open and create.
#include <bpf/bpf.h>
#include <errno.h>
#include <napi.h>

#include <string>

#include "errors.h"

namespace tally {

// objPin(fd, path): pins the map or link behind fd at path (in a bpffs).
static Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string path = info[1].As<Napi::String>();
  if (bpf_obj_pin(fd, path.c_str())) ErrnoError(env, "pinning at " + path, errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

// objGet(path) -> a new fd for the object pinned at path (the caller closes it with closeFd).
static Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    ErrnoError(env, "opening the pin " + path, errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// arrayMapCreate(name, valueSize, maxEntries, programs?) -> fd of a new
// BPF_MAP_TYPE_ARRAY keyed by __u32, or with `programs` a BPF_MAP_TYPE_PROG_ARRAY
// (valueSize 4: program fds in, program ids out).
static Napi::Value ArrayMapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  uint32_t value_size = info[1].As<Napi::Number>().Uint32Value();
  uint32_t max_entries = info[2].As<Napi::Number>().Uint32Value();
  bool programs = info.Length() > 3 && info[3].ToBoolean().Value();
  int fd = bpf_map_create(programs ? BPF_MAP_TYPE_PROG_ARRAY : BPF_MAP_TYPE_ARRAY, name.c_str(), sizeof(uint32_t), value_size,
                          max_entries, nullptr);
  if (fd < 0) {
    ErrnoError(env, "creating array map " + name, errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

void InitPins(Napi::Env env, Napi::Object exports) {
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("arrayMapCreate", Napi::Function::New(env, ArrayMapCreate));
}

}  // namespace tally
