#include "errors.h"

#include <bpf/libbpf.h>
#include <string.h>

#include <cstdarg>
#include <cstdio>

namespace tally {

// One capture per thread: libbpf prints from whichever thread calls it, the
// JavaScript thread for most calls and a libuv worker for an object loaded
// off the event loop (bpf_object_load.cc), and each call's lines belong to
// the capture of the thread that made it.
static thread_local LogCapture* g_capture = nullptr;

LogCapture::LogCapture() : previous_(g_capture) { g_capture = this; }
LogCapture::~LogCapture() { g_capture = previous_; }

void LogCapture::Append(const char* line) {
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (!s.empty()) lines_.push_back(std::move(s));
}

static int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG || g_capture == nullptr) return 0;
  // Verifier logs arrive as one message of any size: format it whole, then
  // split it into lines, so the verifier's conclusion at the end is kept.
  va_list measure;
  va_copy(measure, args);
  int n = vsnprintf(nullptr, 0, fmt, measure);
  va_end(measure);
  if (n <= 0) return n;
  std::string buf(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(&buf[0], buf.size(), fmt, args);
  char* save = nullptr;
  for (char* line = strtok_r(&buf[0], "\n", &save); line; line = strtok_r(nullptr, "\n", &save))
    g_capture->Append(line);
  return n;
}

void InstallLibbpfLogger() { libbpf_set_print(LibbpfPrint); }

// The errno's symbolic name: glibc knows every user-visible one; 524 is the
// kernel's internal ENOTSUPP, which BPF syscalls return (lookup-and-delete on
// a hash map before 5.14, for one). Anything else shows its number.
static std::string ErrnoName(int err) {
  if (err == 524) return "ENOTSUPP";
  if (const char* name = strerrorname_np(err)) return name;
  return "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err,
                       const std::vector<std::string>& log) {
  if (err < 0) err = -err;
  std::string msg = what + ": " + (err == 524 ? "operation not supported" : strerror(err)) +
                    " (" + ErrnoName(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  Napi::Array lines = Napi::Array::New(env, log.size());
  for (size_t i = 0; i < log.size(); i++) lines.Set(i, Napi::String::New(env, log[i]));
  e.Set("log", lines);
  return e;
}

}  // namespace tally
