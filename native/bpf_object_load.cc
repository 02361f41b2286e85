// loadAsync(): bpf_object__load on a libuv worker thread, so the JavaScript
// thread keeps serving scrapes and probes while the kernel verifies. A
// policy hook's load takes 100-250 ms (the verifier, and libbpf parsing the
// kernel's BTF for CO-RE); an agent loading hundreds of them on its event
// loop stopped answering for minutes (issue 20).
//
// While the load runs the object belongs to the worker: every other method
// refuses (BpfObject::RequireObject), and the worker holds a reference to
// the JavaScript object so it cannot be collected half-loaded. libbpf's
// messages are captured per thread (errors.cc), so the worker's lines are
// its own. JavaScript loads one object at a time (src/bpf/loader.ts): libbpf
// caches what the kernel supports in globals it does not lock.
#include <bpf/libbpf.h>
#include <errno.h>

#include <string>
#include <vector>

#include "bpf_object.h"
#include "errors.h"
#include "map_shapes.h"

namespace tally {

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, BpfObject* target, Napi::Object self)
      : Napi::AsyncWorker(env), target_(target), self_(Napi::Persistent(self)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    LogCapture log;
    err_ = bpf_object__load(target_->obj_);
    log_ = log.lines();
  }

  void OnOK() override {
    Napi::Env env = Env();
    target_->loading_ = false;
    // libbpf marks an object loaded whether or not the load succeeded: it cannot be loaded twice.
    target_->loaded_ = err_ == 0;
    if (err_ == 0) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    // A failed load closed the maps it had created, on the worker: their fds may be reused.
    ForgetMapShapes();
    deferred_.Reject(ErrnoError(env, std::string("loading BPF object ") + bpf_object__name(target_->obj_), err_, log_).Value());
  }

 private:
  BpfObject* target_;
  Napi::ObjectReference self_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  std::vector<std::string> log_;
};

Napi::Value BpfObject::LoadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireObject(env)) return env.Undefined();
  auto* worker = new LoadWorker(env, this, info.This().As<Napi::Object>());
  Napi::Promise promise = worker->Promise();
  loading_ = true;
  worker->Queue();
  return promise;
}

}  // namespace tally
