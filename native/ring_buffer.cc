// RingBuffer: consumes a BPF ring buffer on its own thread and delivers
// records to JavaScript in batches through an unref'd ThreadSafeFunction.
// The thread sleeps in epoll on libbpf's epoll fd plus an eventfd used to wake
// it for shutdown, so an idle consumer costs nothing.
#include <bpf/libbpf.h>
#include <errno.h>
#include <napi.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"

namespace tally {

using Batch = std::vector<std::string>;

class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RingBuffer",
                       {InstanceMethod("close", &RingBuffer::Close),
                        InstanceMethod("stats", &RingBuffer::Stats)});
  }

  RingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBuffer>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "RingBuffer(mapFd, onRecords)").ThrowAsJavaScriptException();
      return;
    }
    int map_fd = info[0].As<Napi::Number>().Int32Value();
    LogCapture log;
    rb_ = ring_buffer__new(map_fd, &RingBuffer::OnSample, this, nullptr);
    if (!rb_) {
      ErrnoError(env, "ring_buffer__new", errno, log.lines()).ThrowAsJavaScriptException();
      return;
    }
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = ring_buffer__epoll_fd(rb_);
    bool ok = wake_fd_ >= 0 && epoll_fd_ >= 0 && epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ev.data.fd, &ev) == 0;
    ev.data.fd = wake_fd_;
    ok = ok && epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0;
    if (!ok) {
      int err = errno;
      Shutdown();
      ErrnoError(env, "setting up the ring-buffer consumer", err).ThrowAsJavaScriptException();
      return;
    }

    // A bounded queue: if JavaScript stalls, batches are dropped and counted
    // rather than piling up in memory.
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "tally-ringbuf", 64, 1);
    tsfn_.Unref(env);
    thread_ = std::thread([this] { Run(); });
  }

  ~RingBuffer() override { Shutdown(); }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingBuffer*>(ctx);
    self->pending_.emplace_back(static_cast<const char*>(data), size);
    return 0;
  }

  void Run() {
    epoll_event events[2];
    while (!stopping_.load()) {
      int n = epoll_wait(epoll_fd_, events, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || stopping_.load()) {
        if (n < 0) failed_errno_ = errno;
        break;
      }
      int consumed = ring_buffer__consume(rb_);
      if (consumed < 0) {
        // A broken ring would make level-triggered epoll spin: stop, and say so in stats().
        failed_errno_ = -consumed;
        break;
      }
      if (pending_.empty()) continue;
      auto* batch = new Batch(std::move(pending_));
      pending_.clear();
      size_t records = batch->size();
      napi_status st = tsfn_.NonBlockingCall(batch, &RingBuffer::Deliver);
      if (st != napi_ok) {
        dropped_ += records;
        delete batch;
      } else {
        delivered_ += records;
      }
    }
  }

  static void Deliver(Napi::Env env, Napi::Function cb, Batch* batch) {
    std::unique_ptr<Batch> owned(batch);
    if (env == nullptr || cb == nullptr) return;
    // No C++ exception may leave a thread-safe function's call: it would
    // terminate the process. One thrown while Node tears the environment
    // down (a batch queued as the process exits) has nowhere to go; one from
    // the callback becomes the JavaScript exception it was, via the C API,
    // which cannot throw.
    try {
      Napi::Array arr = Napi::Array::New(env, batch->size());
      for (size_t i = 0; i < batch->size(); i++)
        arr.Set(i, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>((*batch)[i].data()),
                                                 (*batch)[i].size()));
      cb.Call({arr});
    } catch (const Napi::Error& e) {
      napi_throw(env, e.Value());
    }
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    if (thread_.joinable()) {
      stopping_.store(true);
      uint64_t one = 1;
      (void)!write(wake_fd_, &one, sizeof(one));
      thread_.join();
      tsfn_.Release();
    }
    if (rb_) ring_buffer__free(rb_);
    rb_ = nullptr;
    if (wake_fd_ >= 0) close(wake_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
    wake_fd_ = epoll_fd_ = -1;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  // {delivered, dropped}: records handed to JavaScript, and records dropped
  // because JavaScript's queue was full.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("delivered", Napi::Number::New(info.Env(), static_cast<double>(delivered_.load())));
    o.Set("dropped", Napi::Number::New(info.Env(), static_cast<double>(dropped_.load())));
    o.Set("failedErrno", Napi::Number::New(info.Env(), failed_errno_.load()));
    return o;
  }

  ring_buffer* rb_ = nullptr;
  int wake_fd_ = -1;
  int epoll_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> delivered_{0}, dropped_{0};
  std::atomic<int> failed_errno_{0};  // why the consumer thread stopped early, if it did
  bool closed_ = false;
  Batch pending_;  // touched only by the consumer thread
  Napi::ThreadSafeFunction tsfn_;
};

Napi::Function InitRingBuffer(Napi::Env env) { return RingBuffer::Init(env); }

}  // namespace tally
