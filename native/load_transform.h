// A JavaScript pass over each program's relocated instructions, run by
// libbpf just before the kernel loads them (see load_transform.cc).
#pragma once
#include <napi.h>

#include <string>

struct bpf_object;
struct bpf_program;

namespace tally {

// Registers, once, the libbpf section handlers that make the pass possible.
void RegisterLoadTransformHandlers();

// While alive, every program of obj that libbpf loads is first handed to
// transform(program, insns, rodata) on this (the JavaScript) thread.
class LoadTransformScope {
 public:
  LoadTransformScope(Napi::Env env, bpf_object* obj, Napi::Function transform);
  ~LoadTransformScope();
  // What went wrong in the pass, if it did (libbpf then fails the load).
  const std::string& error() const { return error_; }

 private:
  friend int RunLoadTransform(::bpf_program* prog);
  Napi::Env env_;
  bpf_object* obj_;
  Napi::Function transform_;
  std::string error_;
  LoadTransformScope* previous_;
};

}  // namespace tally
