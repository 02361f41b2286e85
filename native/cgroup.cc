// cgroup id -> path, in O(1): a cgroup v2 id is a kernfs node id, which the
// kernel accepts as a file handle (FILEID_KERNFS) on the cgroup2 mount.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <napi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "errors.h"

namespace tally {

static constexpr int kFileIdKernfs = 0xfe;

// The cgroup2 mount stays open between calls: resolving 100k new cgroups
// should cost 100k open_by_handle_at calls, not 200k opens.
static std::string g_mount_dir;
static int g_mount_fd = -1;

static int MountFd(const std::string& dir) {
  if (g_mount_fd >= 0 && dir == g_mount_dir) return g_mount_fd;
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (g_mount_fd >= 0) close(g_mount_fd);
  g_mount_fd = fd;
  g_mount_dir = dir;
  return fd;
}

// cgroupPath(mountDir, id: bigint) -> path relative to the mount ("/a/b"),
// or null when no cgroup has that id any more.
static Napi::Value CgroupPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string mount_dir = info[0].As<Napi::String>();
  bool lossless = true;
  uint64_t id = info[1].As<Napi::BigInt>().Uint64Value(&lossless);

  int mount_fd = MountFd(mount_dir);
  if (mount_fd < 0) {
    ErrnoError(env, "opening " + mount_dir, errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct {
    struct file_handle fh;
    uint64_t id;
  } handle;
  handle.fh.handle_bytes = sizeof(uint64_t);
  handle.fh.handle_type = kFileIdKernfs;
  memcpy(handle.fh.f_handle, &id, sizeof(id));
  int fd = open_by_handle_at(mount_fd, &handle.fh, O_RDONLY | O_CLOEXEC);
  int err = errno;
  if (fd < 0) {
    if (err == ESTALE || err == ENOENT) return env.Null();
    ErrnoError(env, "open_by_handle_at(cgroup " + std::to_string(id) + ")", err)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  err = errno;
  close(fd);
  if (n < 0) {
    ErrnoError(env, "readlink " + std::string(link), err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  path[n] = '\0';
  std::string full(path);
  if (full.compare(0, mount_dir.size(), mount_dir) == 0) full = full.substr(mount_dir.size());
  if (full.empty()) full = "/";
  return Napi::String::New(env, full);
}

void InitCgroup(Napi::Env env, Napi::Object exports) {
  exports.Set("cgroupPath", Napi::Function::New(env, CgroupPath));
}

}  // namespace tally
