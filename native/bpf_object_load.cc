// openAsync() and loadAsync(): bpf_object__open_file and bpf_object__load
// on a libuv worker thread, so the JavaScript
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
//
// loadAsync({program: func}) also sets fentry/fexit/tp_btf attach targets
// there: libbpf resolves a target in the kernel's BTF, which it parses whole
// for that (20-40 ms), and that belongs off the event loop as much as the
// load does.
#include <bpf/libbpf.h>
#include <errno.h>

#include <string>
#include <utility>
#include <vector>

#include "bpf_object.h"
#include "errors.h"
#include "map_shapes.h"

namespace tally {

class LoadWorker : public Napi::AsyncWorker {
 public:
  using AttachTargets = std::vector<std::pair<bpf_program*, std::string>>;

  LoadWorker(Napi::Env env, BpfObject* target, Napi::Object self, AttachTargets targets)
      : Napi::AsyncWorker(env),
        target_(target),
        self_(Napi::Persistent(self)),
        deferred_(Napi::Promise::Deferred::New(env)),
        targets_(std::move(targets)),
        what_(std::string("loading BPF object ") + bpf_object__name(target->obj_)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    LogCapture log;
    for (auto& t : targets_) {
      int err = bpf_program__set_attach_target(t.first, 0, t.second.c_str());
      if (err) {
        err_ = -err;
        what_ = "attach target " + t.second;
        log_ = log.lines();
        return;
      }
    }
    loading_ = true;
    err_ = bpf_object__load(target_->obj_);
    log_ = log.lines();
  }

  void OnOK() override {
    Napi::Env env = Env();
    target_->loading_ = false;
    target_->loaded_ = err_ == 0;
    if (err_ == 0) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    // A failed load closed the maps it had created, on the worker: their fds may be reused.
    if (loading_) ForgetMapShapes();
    deferred_.Reject(ErrnoError(env, what_, err_, log_).Value());
  }

 private:
  BpfObject* target_;
  Napi::ObjectReference self_;
  Napi::Promise::Deferred deferred_;
  AttachTargets targets_;
  std::string what_;
  bool loading_ = false;  // the targets were set and bpf_object__load ran
  int err_ = 0;
  std::vector<std::string> log_;
};

// Opening reads the ELF and copies every program's instructions, the
// object's BTF and BTF.ext: 10-40 ms for the policy object.
class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, std::string path, std::string btf_path)
      : Napi::AsyncWorker(env), path_(std::move(path)), btf_path_(std::move(btf_path)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    LogCapture log;
    DECLARE_LIBBPF_OPTS(bpf_object_open_opts, opts);
    if (!btf_path_.empty()) opts.btf_custom_path = btf_path_.c_str();
    obj_ = bpf_object__open_file(path_.c_str(), &opts);
    err_ = obj_ ? 0 : errno;
    log_ = log.lines();
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!obj_) {
      deferred_.Reject(ErrnoError(env, "opening BPF object " + path_, err_, log_).Value());
      return;
    }
    deferred_.Resolve(BpfObject::constructor_.New({Napi::External<bpf_object>::New(env, obj_)}));
  }

 private:
  std::string path_;
  std::string btf_path_;
  Napi::Promise::Deferred deferred_;
  bpf_object* obj_ = nullptr;
  int err_ = 0;
  std::vector<std::string> log_;
};

Napi::Value BpfObject::OpenAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    Napi::TypeError::New(env, "openAsync(path): path must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string btf_path;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value v = info[1].As<Napi::Object>().Get("kernelBtfPath");
    if (v.IsString()) btf_path = v.As<Napi::String>();
  }
  auto* worker = new OpenWorker(env, info[0].As<Napi::String>(), btf_path);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value BpfObject::LoadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireObject(env)) return env.Undefined();
  LoadWorker::AttachTargets targets;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object t = info[0].As<Napi::Object>();
    Napi::Array names = t.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      bpf_program* prog = FindProgram(env, names.Get(i));
      if (!prog) return env.Undefined();
      targets.emplace_back(prog, t.Get(names.Get(i)).ToString().Utf8Value());
    }
  }
  auto* worker = new LoadWorker(env, this, info.This().As<Napi::Object>(), std::move(targets));
  Napi::Promise promise = worker->Promise();
  loading_ = true;
  worker->Queue();
  return promise;
}

}  // namespace tally
