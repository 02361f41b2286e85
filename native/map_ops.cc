// Map reads and writes by file descriptor. Reads go through
// BPF_MAP_LOOKUP_BATCH (one syscall per few thousand entries); key-by-key
// iteration is the fallback for kernels or map types without batch support.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <napi.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "errors.h"
#include "map_shapes.h"

namespace tally {

struct MapShape {
  bpf_map_info info;
  uint32_t stride;  // bytes per value as user space sees it (all CPUs for per-CPU maps)
  bool per_cpu;
};

static bool IsPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// Only the JavaScript thread touches it.
static std::unordered_map<int, MapShape> shapes;

void ForgetMapShapes() { shapes.clear(); }

static bool Shape(Napi::Env env, int fd, MapShape* s) {
  auto hit = shapes.find(fd);
  if (hit != shapes.end()) {
    *s = hit->second;
    return true;
  }
  memset(&s->info, 0, sizeof(s->info));
  uint32_t len = sizeof(s->info);
  if (bpf_obj_get_info_by_fd(fd, &s->info, &len)) {
    ErrnoError(env, "reading map info", errno).ThrowAsJavaScriptException();
    return false;
  }
  s->per_cpu = IsPerCpu(s->info.type);
  s->stride = s->per_cpu ? ((s->info.value_size + 7) / 8 * 8) * libbpf_num_possible_cpus()
                         : s->info.value_size;
  shapes[fd] = *s;
  return true;
}

static Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MapShape s;
  if (!Shape(env, info[0].As<Napi::Number>().Int32Value(), &s)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", s.info.id);
  o.Set("name", s.info.name);
  o.Set("type", libbpf_bpf_map_type_str(static_cast<bpf_map_type>(s.info.type)));
  o.Set("keySize", s.info.key_size);
  o.Set("valueSize", s.info.value_size);
  o.Set("valueStride", s.stride);
  o.Set("maxEntries", s.info.max_entries);
  o.Set("perCpu", s.per_cpu);
  return o;
}

// Key-by-key: get_next_key + lookup. Entries deleted meanwhile are skipped.
static int IterateKeys(int fd, const MapShape& s, std::vector<uint8_t>* keys,
                       std::vector<uint8_t>* values, uint32_t* count) {
  std::vector<uint8_t> key(s.info.key_size), next(s.info.key_size), value(s.stride);
  bool first = true;
  *count = 0;
  for (;;) {
    if (bpf_map_get_next_key(fd, first ? nullptr : key.data(), next.data())) {
      return errno == ENOENT ? 0 : -errno;
    }
    first = false;
    key = next;
    if (bpf_map_lookup_elem(fd, key.data(), value.data())) {
      if (errno == ENOENT) continue;
      return -errno;
    }
    keys->insert(keys->end(), key.begin(), key.end());
    values->insert(values->end(), value.begin(), value.end());
    (*count)++;
  }
}

// mapLookupAll(fd, {batch?: boolean}) -> {keys: Buffer, values: Buffer, count, batched}
static Napi::Value MapLookupAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool allow_batch = true;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value b = info[1].As<Napi::Object>().Get("batch");
    if (b.IsBoolean()) allow_batch = b.As<Napi::Boolean>();
  }
  MapShape s;
  if (!Shape(env, fd, &s)) return env.Undefined();

  std::vector<uint8_t> keys, values;
  uint32_t total = 0;
  bool batched = false;
  if (allow_batch) {
    // The batch token is opaque (a bucket index for hashes); 8 bytes or a key suffice.
    size_t token_size = std::max<size_t>(s.info.key_size, 8);
    std::vector<uint8_t> in_token(token_size), out_token(token_size);
    uint32_t chunk = std::min<uint32_t>(std::max<uint32_t>(s.info.max_entries, 1), 4096);
    bool first = true;
    DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, opts);
    batched = true;
    for (;;) {
      size_t key_off = keys.size(), val_off = values.size();
      keys.resize(key_off + size_t(chunk) * s.info.key_size);
      values.resize(val_off + size_t(chunk) * s.stride);
      uint32_t n = chunk;
      int err = bpf_map_lookup_batch(fd, first ? nullptr : in_token.data(), out_token.data(),
                                     keys.data() + key_off, values.data() + val_off, &n, &opts);
      int e = err ? errno : 0;
      if (err && e == ENOSPC && n == 0) {
        // A bucket holds more entries than fit: retry this step with room.
        keys.resize(key_off);
        values.resize(val_off);
        chunk *= 2;
        continue;
      }
      if (err && e != ENOENT && first && (e == EINVAL || e == ENOTSUP || e == 524)) {
        // Batch ops unsupported for this map type or kernel.
        keys.clear();
        values.clear();
        batched = false;
        break;
      }
      if (err && e != ENOENT) {
        ErrnoError(env, "BPF_MAP_LOOKUP_BATCH", e).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      total += n;
      keys.resize(key_off + size_t(n) * s.info.key_size);
      values.resize(val_off + size_t(n) * s.stride);
      if (err) break;  // ENOENT: that was the last batch
      in_token = out_token;
      first = false;
    }
  }
  if (!batched) {
    int err = IterateKeys(fd, s, &keys, &values, &total);
    if (err) {
      ErrnoError(env, "iterating map keys", err).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), keys.size()));
  o.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), values.size()));
  o.Set("count", total);
  o.Set("keySize", s.info.key_size);
  o.Set("valueStride", s.stride);
  o.Set("batched", batched);
  return o;
}

static bool KeyMatches(Napi::Env env, const MapShape& s, const Napi::Buffer<uint8_t>& key) {
  if (key.Length() == s.info.key_size) return true;
  Napi::Error::New(env, "key has " + std::to_string(key.Length()) + " bytes, map expects " +
                            std::to_string(s.info.key_size))
      .ThrowAsJavaScriptException();
  return false;
}

// Reads one value (all CPUs' for per-CPU maps) with `read`; null if absent.
template <typename Read>
static Napi::Value ReadOne(const Napi::CallbackInfo& info, Read read, const char* what) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  MapShape s;
  if (!Shape(env, fd, &s) || !KeyMatches(env, s, key)) return env.Undefined();
  std::vector<uint8_t> value(s.stride);
  if (read(fd, key.Data(), value.data())) {
    if (errno == ENOENT) return env.Null();
    ErrnoError(env, what, errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
}

// mapLookup(fd, key) -> Buffer | null
static Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  return ReadOne(info, bpf_map_lookup_elem, "map lookup");
}

// mapLookupAndDelete(fd, key) -> the value it had | null if absent. One
// syscall, atomic for the entry: nothing added between read and delete is lost.
static Napi::Value MapLookupAndDelete(const Napi::CallbackInfo& info) {
  return ReadOne(info, bpf_map_lookup_and_delete_elem, "map lookup-and-delete");
}

// mapUpdate(fd, key, value, flags): value holds all CPUs' values for per-CPU maps.
static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  auto value = info[2].As<Napi::Buffer<uint8_t>>();
  uint64_t flags = info.Length() > 3 ? info[3].As<Napi::Number>().Int64Value() : uint64_t(BPF_ANY);
  MapShape s;
  if (!Shape(env, fd, &s) || !KeyMatches(env, s, key)) return env.Undefined();
  if (value.Length() != s.stride) {
    Napi::Error::New(env, "value has " + std::to_string(value.Length()) + " bytes, map expects " +
                              std::to_string(s.stride))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (bpf_map_update_elem(fd, key.Data(), value.Data(), flags)) {
    ErrnoError(env, "map update", errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// mapDelete(fd, key) -> true if deleted, false if absent
static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  MapShape s;
  if (!Shape(env, fd, &s) || !KeyMatches(env, s, key)) return env.Undefined();
  if (bpf_map_delete_elem(fd, key.Data())) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ErrnoError(env, "map delete", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// mapFdById(id) -> a new fd for an existing map (the caller closes it with closeFd).
static Napi::Value MapFdById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_map_get_fd_by_id(info[0].As<Napi::Number>().Uint32Value());
  if (fd < 0) {
    ErrnoError(env, "bpf_map_get_fd_by_id", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  shapes.erase(fd);
  close(fd);
  return info.Env().Undefined();
}

void InitMapOps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFdById", Napi::Function::New(env, MapFdById));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("mapLookupAll", Napi::Function::New(env, MapLookupAll));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapLookupAndDelete", Napi::Function::New(env, MapLookupAndDelete));
}

}  // namespace tally
