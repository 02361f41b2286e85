// BpfObject: one BPF ELF object through its life: open, configure, load,
// attach, close. JavaScript decides what to configure and attach; this class
// only makes the libbpf calls and reports exactly what the kernel said.
#pragma once
#include <napi.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

struct bpf_object;
struct bpf_link;
struct bpf_program;
struct bpf_map;

namespace tally {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env);
  // openAsync(path[, {kernelBtfPath}]) -> Promise<BpfObject>: the constructor's
  // bpf_object__open_file on a libuv worker (bpf_object_load.cc).
  static Napi::Value OpenAsync(const Napi::CallbackInfo& info);
  explicit BpfObject(const Napi::CallbackInfo& info);
  ~BpfObject() override;  // backstop only: JavaScript calls close()

 private:
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value SetAutoload(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value SetConstant(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value LoadAsync(const Napi::CallbackInfo& info);  // bpf_object_load.cc
  Napi::Value FreeObject(const Napi::CallbackInfo& info);
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value LinkFds(const Napi::CallbackInfo& info);
  Napi::Value ReuseMap(const Napi::CallbackInfo& info);
  Napi::Value SetAttachTarget(const Napi::CallbackInfo& info);
  Napi::Value MapFd(const Napi::CallbackInfo& info);
  Napi::Value ProgramInfo(const Napi::CallbackInfo& info);
  Napi::Value ProgramFd(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  bpf_program* FindProgram(Napi::Env env, const Napi::Value& name);
  bpf_map* FindMap(Napi::Env env, const Napi::Value& name);
  int LoadedProgramFd(Napi::Env env, const Napi::Value& name);
  void Release();

  bool RequireObject(Napi::Env env);

  friend class LoadWorker;
  friend class OpenWorker;
  static Napi::FunctionReference constructor_;

  bpf_object* obj_ = nullptr;
  bool loaded_ = false;
  // The USDT links among links_: they use the object's USDT manager until destroyed, and have no fd.
  std::set<bpf_link*> usdt_links_;
  // A libuv worker is loading obj_ (loadAsync): nothing else may touch it.
  bool loading_ = false;
  // freeObject() was called: obj_ is gone, the links and programs run on.
  bool freed_ = false;
  std::vector<bpf_link*> links_;
  // After freeObject(): a duplicate fd of each program that was loaded, by name, for programInfo().
  std::vector<std::pair<std::string, int>> program_fds_;
};

}  // namespace tally
