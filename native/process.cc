// reexec(path, argv): replaces this process's image with `path` run with
// `argv` (execv), keeping its pid, its environment and its open stdio. Node 20
// has no process.execve; tally uses this once, at startup, to restart node
// with the V8 heap limit it needs (src/cli/heap.ts) without a wrapper process
// in between: whatever supervises the pid (a service manager, a container
// runtime, npm) keeps supervising the agent, and signals reach it.
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <napi.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"

namespace tally {

static Napi::Value Reexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    Napi::TypeError::New(env, "reexec(path: string, argv: string[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>();
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < arr.Length(); i++) args.push_back(arr.Get(i).ToString().Utf8Value());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Node marks the stdio fds close-on-exec; the new image must keep them.
  for (int fd = 0; fd <= 2; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  execv(path.c_str(), argv.data());
  // Only reached when execv failed; the process is unchanged.
  ErrnoError(env, "execv " + path, errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

// mallocTrim(): hands the C heap's free pages back to the kernel. libbpf
// allocates and frees megabytes per BPF object (the kernel's BTF, program
// instructions, relocation tables); glibc keeps freed memory below the top of
// its heaps for reuse, so without this the agent's RSS only ever grows as
// policies come and go. Returns whether any memory was released.
static Napi::Value MallocTrim(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

// glibc raises its mmap threshold to the size of the largest block freed
// (up to 32 MiB) and its trim threshold to twice that. libbpf's parse of the
// kernel's BTF frees blocks of several MiB, so after the first hook load the
// free top of each libuv thread's arena (where the objects load) stayed
// resident: 30-40 MiB of an idle agent, which malloc_trim cannot return
// (it trims only the main arena's top). Fixing the thresholds at glibc's
// own defaults keeps large blocks in mmap and trims an arena's top as soon
// as 128 KiB are free at its end. A parse then faults its pages in afresh,
// which measured no slower than reusing them (BENCHMARKS.md, "Agent memory").
static void FixMallocThresholds() {
  constexpr int kTrimThreshold = 128 * 1024;
  constexpr int kMmapThreshold = 128 * 1024;
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
}

// mallocStats(): glibc's own account of the C heap, summed over every arena
// (mallinfo2). RSS cannot tell a leak from memory glibc keeps for reuse: a
// thread's arena holds freed blocks below its top, and how much of that stays
// resident depends on which thread loaded what. `inUse` is what is allocated
// now, whatever the layout; `free` is what glibc holds without it being used.
static Napi::Value MallocStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct mallinfo2 m = mallinfo2();
  Napi::Object out = Napi::Object::New(env);
  out.Set("inUse", Napi::Number::New(env, static_cast<double>(m.uordblks + m.hblkhd)));
  out.Set("free", Napi::Number::New(env, static_cast<double>(m.fordblks)));
  return out;
}

void InitProcess(Napi::Env env, Napi::Object exports) {
  FixMallocThresholds();
  exports.Set("reexec", Napi::Function::New(env, Reexec));
  exports.Set("mallocTrim", Napi::Function::New(env, MallocTrim));
  exports.Set("mallocStats", Napi::Function::New(env, MallocStats));
}

}  // namespace tally
