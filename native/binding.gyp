{
  "targets": [{
    "target_name": "tally_native",
    "sources": ["addon.cc", "errors.cc", "bpf_object.cc", "bpf_object_load.cc", "map_ops.cc", "ring_buffer.cc", "cgroup.cc", "layout.cc", "kernel_btf.cc", "process.cc", "pins.cc"],
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "../build/libbpf/root/include",
      "../bpf"
    ],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
    "cflags_cc!": ["-fno-exceptions"],
    "libraries": [
      "<(module_root_dir)/../build/libbpf/root/lib/libbpf.a",
      "-lelf", "-lz"
    ]
  }]
}
