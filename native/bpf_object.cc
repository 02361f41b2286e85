#include "bpf_object.h"
#include "map_shapes.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errors.h"

namespace tally {

Napi::FunctionReference BpfObject::constructor_;

Napi::Function BpfObject::Init(Napi::Env env) {
  Napi::Function cls = DefineClass(env, "BpfObject",
                     {
                         InstanceMethod("programs", &BpfObject::Programs),
                         InstanceMethod("maps", &BpfObject::Maps),
                         InstanceMethod("setAutoload", &BpfObject::SetAutoload),
                         InstanceMethod("setMaxEntries", &BpfObject::SetMaxEntries),
                         InstanceMethod("setConstant", &BpfObject::SetConstant),
                         InstanceMethod("load", &BpfObject::Load),
                         InstanceMethod("loadAsync", &BpfObject::LoadAsync),
                         InstanceMethod("freeObject", &BpfObject::FreeObject),
                         InstanceMethod("attach", &BpfObject::Attach),
                         InstanceMethod("linkFds", &BpfObject::LinkFds),
                         InstanceMethod("reuseMap", &BpfObject::ReuseMap),
                         InstanceMethod("setAttachTarget", &BpfObject::SetAttachTarget),
                         InstanceMethod("mapFd", &BpfObject::MapFd),
                         InstanceMethod("programInfo", &BpfObject::ProgramInfo),
                         InstanceMethod("programFd", &BpfObject::ProgramFd),
                         InstanceMethod("close", &BpfObject::Close),
                     });
  // The addon is loaded once per process (tally runs no worker_threads), so one reference serves openAsync.
  constructor_ = Napi::Persistent(cls);
  constructor_.SuppressDestruct();
  return cls;
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  Napi::Env env = info.Env();
  // An object openAsync() opened on a worker (bpf_object_load.cc), adopted as is.
  if (info[0].IsExternal()) {
    obj_ = info[0].As<Napi::External<bpf_object>>().Data();
    return;
  }
  if (!info[0].IsString()) {
    Napi::TypeError::New(env, "BpfObject(path): path must be a string").ThrowAsJavaScriptException();
    return;
  }
  std::string path = info[0].As<Napi::String>();
  // Optional {kernelBtfPath}: the kernel's BTF from a file, for kernels that
  // lack /sys/kernel/btf/vmlinux (CO-RE relocations are resolved against it).
  std::string btf_path;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value v = info[1].As<Napi::Object>().Get("kernelBtfPath");
    if (v.IsString()) btf_path = v.As<Napi::String>();
  }
  DECLARE_LIBBPF_OPTS(bpf_object_open_opts, opts);
  if (!btf_path.empty()) opts.btf_custom_path = btf_path.c_str();
  LogCapture log;
  obj_ = bpf_object__open_file(path.c_str(), &opts);
  if (!obj_) {
    int err = errno;
    ErrnoError(env, "opening BPF object " + path, err, log.lines()).ThrowAsJavaScriptException();
  }
}

BpfObject::~BpfObject() { Release(); }

void BpfObject::Release() {
  // Reverse order of acquisition: links first, then programs and maps.
  for (auto it = links_.rbegin(); it != links_.rend(); ++it) bpf_link__destroy(*it);
  links_.clear();
  usdt_links_.clear();
  for (auto& p : program_fds_) close(p.second);
  program_fds_.clear();
  if (obj_) {
    bpf_object__close(obj_);
    ForgetMapShapes();
  }
  obj_ = nullptr;
}

bool BpfObject::RequireObject(Napi::Env env) {
  const char* why = loading_ ? "BpfObject is being loaded (loadAsync)"
                    : freed_ ? "BpfObject was freed after load (freeObject): only its links and programs remain"
                    : !obj_  ? "BpfObject is closed"
                             : nullptr;
  if (!why) return true;
  Napi::Error::New(env, why).ThrowAsJavaScriptException();
  return false;
}

bpf_program* BpfObject::FindProgram(Napi::Env env, const Napi::Value& name) {
  if (!RequireObject(env)) return nullptr;
  std::string n = name.As<Napi::String>();
  bpf_program* prog = bpf_object__find_program_by_name(obj_, n.c_str());
  if (!prog) Napi::Error::New(env, "no BPF program named '" + n + "'").ThrowAsJavaScriptException();
  return prog;
}

bpf_map* BpfObject::FindMap(Napi::Env env, const Napi::Value& name) {
  if (!RequireObject(env)) return nullptr;
  std::string n = name.As<Napi::String>();
  bpf_map* map = bpf_object__find_map_by_name(obj_, n.c_str());
  if (!map) Napi::Error::New(env, "no BPF map named '" + n + "'").ThrowAsJavaScriptException();
  return map;
}

static const char* OrUnknown(const char* s) { return s ? s : "unknown"; }

Napi::Value BpfObject::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireObject(env)) return env.Undefined();
  Napi::Array out = Napi::Array::New(env);
  bpf_program* prog;
  uint32_t i = 0;
  bpf_object__for_each_program(prog, obj_) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("name", bpf_program__name(prog));
    p.Set("section", bpf_program__section_name(prog));
    p.Set("type", OrUnknown(libbpf_bpf_prog_type_str(bpf_program__type(prog))));
    p.Set("attachType", OrUnknown(libbpf_bpf_attach_type_str(bpf_program__expected_attach_type(prog))));
    p.Set("autoload", bpf_program__autoload(prog));
    p.Set("fd", bpf_program__fd(prog));
    out.Set(i++, p);
  }
  return out;
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireObject(env)) return env.Undefined();
  Napi::Array out = Napi::Array::New(env);
  bpf_map* map;
  uint32_t i = 0;
  bpf_object__for_each_map(map, obj_) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("name", bpf_map__name(map));
    m.Set("type", OrUnknown(libbpf_bpf_map_type_str(bpf_map__type(map))));
    m.Set("keySize", bpf_map__key_size(map));
    m.Set("valueSize", bpf_map__value_size(map));
    m.Set("maxEntries", bpf_map__max_entries(map));
    m.Set("internal", bpf_map__is_internal(map));
    m.Set("fd", bpf_map__fd(map));
    out.Set(i++, m);
  }
  return out;
}

Napi::Value BpfObject::SetAutoload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* prog = FindProgram(env, info[0]);
  if (!prog) return env.Undefined();
  int err = bpf_program__set_autoload(prog, info[1].ToBoolean());
  if (err) ErrnoError(env, "set_autoload", err).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value BpfObject::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = FindMap(env, info[0]);
  if (!map) return env.Undefined();
  int err = bpf_map__set_max_entries(map, info[1].As<Napi::Number>().Uint32Value());
  if (err) ErrnoError(env, "set_max_entries", err).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Sets a `const volatile` global in .rodata before load. The variable is found
// through the object's BTF, and its size must match the bytes given.
Napi::Value BpfObject::SetConstant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireObject(env)) return env.Undefined();
  std::string name = info[0].As<Napi::String>();
  Napi::Buffer<uint8_t> bytes = info[1].As<Napi::Buffer<uint8_t>>();
  if (loaded_) {
    Napi::Error::New(env, "setConstant(" + name + "): object is already loaded").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bpf_map* rodata = nullptr;
  bpf_map* map;
  bpf_object__for_each_map(map, obj_) {
    const char* n = bpf_map__name(map);
    size_t len = strlen(n);
    if (bpf_map__is_internal(map) && len >= 7 && strcmp(n + len - 7, ".rodata") == 0) rodata = map;
  }
  const btf* b = bpf_object__btf(obj_);
  int sec_id = b ? btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC) : -1;
  if (!rodata || sec_id < 0) {
    Napi::Error::New(env, "setConstant(" + name + "): object has no .rodata").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const btf_type* sec = btf__type_by_id(b, sec_id);
  const btf_var_secinfo* vs = btf_var_secinfos(sec);
  for (uint16_t i = 0; i < btf_vlen(sec); i++, vs++) {
    const btf_type* var = btf__type_by_id(b, vs->type);
    if (name != btf__name_by_offset(b, var->name_off)) continue;
    if (vs->size != bytes.Length()) {
      Napi::Error::New(env, "setConstant(" + name + "): variable has " + std::to_string(vs->size) +
                                " bytes, got " + std::to_string(bytes.Length()))
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    // Copy, patch, and hand back the whole section through the public API.
    size_t size = 0;
    const uint8_t* current = static_cast<const uint8_t*>(bpf_map__initial_value(rodata, &size));
    if (!current || vs->offset + vs->size > size) {
      Napi::Error::New(env, "setConstant(" + name + "): .rodata is not writable").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::vector<uint8_t> data(current, current + size);
    memcpy(data.data() + vs->offset, bytes.Data(), vs->size);
    int err = bpf_map__set_initial_value(rodata, data.data(), data.size());
    if (err) ErrnoError(env, "setConstant(" + name + ")", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Error::New(env, "setConstant: no constant named '" + name + "' in .rodata").ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireObject(env)) return env.Undefined();
  LogCapture log;
  int err = bpf_object__load(obj_);
  if (err) {
    ErrnoError(env, std::string("loading BPF object ") + bpf_object__name(obj_), err, log.lines())
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  loaded_ = true;
  return env.Undefined();
}

// attach(program[, target]): without a target, the way the section name says
// (tp_btf/, raw_tp/, tracepoint/, ...); with one, to what it names:
//   {kind: "kprobe", func, retprobe}        kernel function
//   {kind: "uprobe", path, func, retprobe}  function of a binary, every process
//   {kind: "usdt", path, provider, name}    USDT probe of a binary, every process
//   {kind: "tracepoint", category, name}
//   {kind: "raw_tp", name}
//   {kind: "cgroup", path}                  cgroup (v2 directory): cgroup_skb and the like, by link
// Returns nothing; the link lives until close().
Napi::Value BpfObject::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* prog = FindProgram(env, info[0]);
  if (!prog) return env.Undefined();
  LogCapture log;
  bpf_link* link = nullptr;
  std::string what = bpf_program__name(prog);
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object t = info[1].As<Napi::Object>();
    std::string kind = t.Get("kind").As<Napi::String>();
    auto str = [&](const char* k) { return t.Get(k).IsString() ? t.Get(k).As<Napi::String>().Utf8Value() : std::string(); };
    bool retprobe = t.Get("retprobe").ToBoolean();
    if (kind == "kprobe") {
      std::string func = str("func");
      what += " to kernel function " + func;
      LIBBPF_OPTS(bpf_kprobe_opts, opts, .retprobe = retprobe);
      link = bpf_program__attach_kprobe_opts(prog, func.c_str(), &opts);
    } else if (kind == "uprobe") {
      std::string path = str("path"), func = str("func");
      what += " to " + path + ":" + func;
      LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe, .func_name = func.c_str());
      link = bpf_program__attach_uprobe_opts(prog, -1, path.c_str(), 0, &opts);
    } else if (kind == "usdt") {
      std::string path = str("path"), provider = str("provider"), name = str("name");
      what += " to USDT " + path + ":" + provider + ":" + name;
      link = bpf_program__attach_usdt(prog, -1, path.c_str(), provider.c_str(), name.c_str(), nullptr);
      // libbpf's USDT link lives off the object's USDT manager: the object must outlive it (FreeObject).
      if (link) usdt_links_.insert(link);
    } else if (kind == "tracepoint") {
      std::string category = str("category"), name = str("name");
      what += " to tracepoint " + category + ":" + name;
      link = bpf_program__attach_tracepoint(prog, category.c_str(), name.c_str());
    } else if (kind == "raw_tp") {
      std::string name = str("name");
      what += " to raw tracepoint " + name;
      link = bpf_program__attach_raw_tracepoint(prog, name.c_str());
    } else if (kind == "cgroup") {
      std::string path = str("path");
      what += " to cgroup " + path;
      // The link holds the cgroup; the directory's fd is only needed to name it.
      int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) {
        ErrnoError(env, "opening cgroup " + path, errno, {}).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      link = bpf_program__attach_cgroup(prog, fd);
      int saved = errno;
      close(fd);
      errno = saved;
    } else {
      Napi::Error::New(env, "attach: unknown target kind '" + kind + "'").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  } else {
    link = bpf_program__attach(prog);
  }
  if (!link) {
    int err = errno;
    ErrnoError(env, "attaching " + what, err, log.lines()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  links_.push_back(link);
  return env.Undefined();
}

// linkFds() -> the fd of each link attach() made, in attach order: to pin
// them (the fds stay the object's; close() still releases them). A USDT link
// is libbpf's own bundle of uprobe links, with no fd of its own to pin: it is
// left out, and its probe detaches when this object closes.
Napi::Value BpfObject::LinkFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (bpf_link* l : links_) {
    if (usdt_links_.count(l)) continue;
    out.Set(n++, Napi::Number::New(env, bpf_link__fd(l)));
  }
  return out;
}

// reuseMap(name, fd): before load, use an existing map instead of creating
// one, so several objects count into one map.
Napi::Value BpfObject::ReuseMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = FindMap(env, info[0]);
  if (!map) return env.Undefined();
  int err = bpf_map__reuse_fd(map, info[1].As<Napi::Number>().Int32Value());
  if (err) ErrnoError(env, "reusing map " + info[0].As<Napi::String>().Utf8Value(), -err).ThrowAsJavaScriptException();
  return env.Undefined();
}

// setAttachTarget(program, func): the kernel function an fentry/fexit program
// attaches to, resolved through BTF at load.
Napi::Value BpfObject::SetAttachTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_program* prog = FindProgram(env, info[0]);
  if (!prog) return env.Undefined();
  std::string func = info[1].As<Napi::String>();
  LogCapture log;
  int err = bpf_program__set_attach_target(prog, 0, func.c_str());
  if (err) ErrnoError(env, "attach target " + func, -err, log.lines()).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value BpfObject::MapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map* map = FindMap(env, info[0]);
  if (!map) return env.Undefined();
  return Napi::Number::New(env, bpf_map__fd(map));
}

// Kernel's view of a loaded program: its id and, when kernel.bpf_stats_enabled
// is on, cumulative run time and run count.
// The fd of a loaded program, before or after freeObject(); -1 when it is not loaded.
int BpfObject::LoadedProgramFd(Napi::Env env, const Napi::Value& name) {
  if (freed_) {
    std::string n = name.As<Napi::String>();
    for (auto& p : program_fds_)
      if (p.first == n) return p.second;
    return -1;
  }
  bpf_program* prog = FindProgram(env, name);
  return prog ? bpf_program__fd(prog) : -1;
}

// programFd(name): the program's fd, owned by the object (a tracepoint chain puts it in its program array).
Napi::Value BpfObject::ProgramFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = LoadedProgramFd(env, info[0]);
  if (env.IsExceptionPending()) return env.Undefined();
  if (fd < 0) {
    Napi::Error::New(env, "program is not loaded").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value BpfObject::ProgramInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = LoadedProgramFd(env, info[0]);
  if (env.IsExceptionPending()) return env.Undefined();
  if (fd < 0) return env.Null();
  bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len)) {
    ErrnoError(env, "bpf_obj_get_info_by_fd", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(pi.run_time_ns)));
  o.Set("runCount", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  o.Set("recursionMisses", Napi::Number::New(env, static_cast<double>(pi.recursion_misses)));
  return o;
}

// freeObject(): once loaded and attached, gives back libbpf's copy of the
// object: every program's instructions and relocations, the object's BTF and
// BTF.ext, its ELF data, megabytes per object. The kernel keeps what runs:
// each link holds its program, each program its maps and BTF. What stays
// here is the links (close() detaches them) and one fd per loaded program
// (programInfo()); maps can no longer be reached by name.
Napi::Value BpfObject::FreeObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireObject(env)) return env.Undefined();
  if (!loaded_) {
    Napi::Error::New(env, "freeObject: the object is not loaded").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Detaching a USDT link frees its spec ids through the object's USDT manager,
  // which bpf_object__close() would free first: such an object is kept whole.
  if (!usdt_links_.empty()) return env.Undefined();
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj_) {
    int fd = bpf_program__fd(prog);
    if (fd < 0) continue;
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      ErrnoError(env, std::string("freeObject: keeping program ") + bpf_program__name(prog), errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    program_fds_.emplace_back(bpf_program__name(prog), dup);
  }
  bpf_object__close(obj_);
  ForgetMapShapes();
  obj_ = nullptr;
  freed_ = true;
  return env.Undefined();
}

Napi::Value BpfObject::Close(const Napi::CallbackInfo& info) {
  if (loading_) {
    Napi::Error::New(info.Env(), "BpfObject is being loaded (loadAsync): close it once the load settles").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Release();
  freed_ = false;
  return info.Env().Undefined();
}

}  // namespace tally
