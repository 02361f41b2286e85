// libbpf log capture and JavaScript errors that carry errno and log lines.
#pragma once
#include <napi.h>
#include <string>
#include <vector>

namespace tally {

// While alive, libbpf's messages (including verifier logs) are collected
// instead of printed, so the error thrown for this call can carry them.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  const std::vector<std::string>& lines() const { return lines_; }
  void Append(const char* line);

 private:
  LogCapture* previous_;
  std::vector<std::string> lines_;
};

// Installs the libbpf print callback once.
void InstallLibbpfLogger();

// An Error with .errno, .code and .log (array of libbpf lines).
Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err,
                       const std::vector<std::string>& log = {});

}  // namespace tally
